//! The decisions of the prescription process.

use serde::{Deserialize, Serialize};

/// One decision: add a drug not in the list, remove one that is, or stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Add(usize),
    Remove(usize),
    Stop,
}

impl Action {
    /// The number of action slots over `drugs` drugs: add each, remove each,
    /// stop.
    pub fn space(drugs: usize) -> usize {
        2 * drugs + 1
    }

    /// The slot of this action in `0..Action::space(drugs)`: adds first, then
    /// removes, then stop.
    pub fn index(self, drugs: usize) -> usize {
        match self {
            Self::Add(d) => d,
            Self::Remove(d) => drugs + d,
            Self::Stop => 2 * drugs,
        }
    }

    /// The action in a slot.
    ///
    /// # Panics
    /// When the slot is outside the action space.
    pub fn from_index(slot: usize, drugs: usize) -> Self {
        assert!(slot <= 2 * drugs, "action slot {slot} outside 0..={}", 2 * drugs);
        if slot < drugs {
            Self::Add(slot)
        } else if slot < 2 * drugs {
            Self::Remove(slot - drugs)
        } else {
            Self::Stop
        }
    }

    pub fn drug(self) -> Option<usize> {
        match self {
            Self::Add(d) | Self::Remove(d) => Some(d),
            Self::Stop => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip() {
        for slot in 0..Action::space(5) {
            assert_eq!(Action::from_index(slot, 5).index(5), slot);
        }
        assert_eq!(Action::from_index(10, 5), Action::Stop);
        assert_eq!(Action::from_index(7, 5), Action::Remove(2));
    }
}
