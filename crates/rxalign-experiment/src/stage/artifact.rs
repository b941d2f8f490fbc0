//! Named artifacts: what a stage hands on to the stages after it, each
//! under the method name of the stage that gave it: a method's predictions
//! (which `start_from` reads), the policy checkpoint of an `sft` stage
//! (which `grpo` starts from), or a kind of a researcher's own (a reward
//! model, a DPO reference). A stage says in its [`Contract`](super::Contract)
//! what it reads ([`Need`]) and gives; the plan checks, before anything
//! trains, that every artifact a stage reads is given by a stage before
//! it. A new kind of artifact is a type that implements [`Artifact`], not
//! a new field of the run's context.

use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rxalign_core::Predictions;

use crate::ExperimentError;

/// A kind of artifact: a type, with the words messages use for it.
pub trait Artifact: Any + Send + Sync {
    /// What it is, in messages (`policy checkpoint`).
    const KIND: &'static str;
    /// What gives one, in the message to a stage that finds none before
    /// it (`an `sft` stage`).
    const GIVEN_BY: &'static str;
}

/// A method's lists (every recorded method gives its predictions).
impl Artifact for Predictions {
    const KIND: &'static str = "predictions";
    const GIVEN_BY: &'static str = "a stage that records a method";
}

/// The checkpoint of a policy of the run's family that later stages start
/// from and keep as their frozen reference: an `sft` stage's. An aligning
/// stage (`grpo`, `step_grpo`) does not give its own, so that several side
/// by side align the same policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyCheckpoint(pub PathBuf);

impl Artifact for PolicyCheckpoint {
    const KIND: &'static str = "policy checkpoint";
    const GIVEN_BY: &'static str = "an `sft` stage";
}

/// An artifact's name: its kind, and the method of the stage that gave it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArtifactId {
    pub kind: &'static str,
    pub name: String,
}

impl ArtifactId {
    /// The artifact of kind `A` named `name`.
    pub fn of<A: Artifact>(name: impl Into<String>) -> Self {
        Self {
            kind: A::KIND,
            name: name.into(),
        }
    }
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind, self.name)
    }
}

/// An artifact a stage reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// The artifact of this kind and name (`start_from`'s method).
    Named(ArtifactId),
    /// The artifact of this kind given last before the stage (the policy
    /// of the last `sft` stage), with what gives one.
    Latest {
        kind: &'static str,
        given_by: &'static str,
    },
}

impl Need {
    /// The artifact of kind `A` named `name`.
    pub fn named<A: Artifact>(name: impl Into<String>) -> Self {
        Self::Named(ArtifactId::of::<A>(name))
    }

    /// The artifact of kind `A` given last.
    pub fn latest<A: Artifact>() -> Self {
        Self::Latest {
            kind: A::KIND,
            given_by: A::GIVEN_BY,
        }
    }

    /// Whether an artifact of `given` meets the need.
    pub fn met_by(&self, given: &ArtifactId) -> bool {
        match self {
            Self::Named(id) => id == given,
            Self::Latest { kind, .. } => *kind == given.kind,
        }
    }
}

/// The artifacts given so far in a run, in the order they were given.
#[derive(Default)]
pub struct Artifacts {
    items: Vec<(ArtifactId, Arc<dyn Any + Send + Sync>)>,
}

impl fmt::Debug for Artifacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.items.iter().map(|(id, _)| id.to_string()))
            .finish()
    }
}

impl Artifacts {
    /// Gives `value` under `name` (replacing an artifact of its kind and
    /// name, which then counts as given last).
    pub fn give<A: Artifact>(&mut self, name: &str, value: A) {
        let id = ArtifactId::of::<A>(name);
        self.items.retain(|(i, _)| *i != id);
        self.items.push((id, Arc::new(value)));
    }

    /// The artifact of kind `A` named `name`; the error names those of its
    /// kind that there are.
    pub fn get<A: Artifact>(&self, name: &str) -> Result<&A, ExperimentError> {
        let id = ArtifactId::of::<A>(name);
        self.items
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .and_then(|(_, value)| value.downcast_ref::<A>())
            .ok_or_else(|| {
                ExperimentError::Invalid(format!(
                    "no earlier stage gave {id}{}; given so far: {}",
                    rxalign_core::suggest::did_you_mean(name, self.names::<A>()),
                    self.given::<A>()
                ))
            })
    }

    /// The artifact of kind `A` given last, with its name.
    pub fn latest<A: Artifact>(&self) -> Result<(&str, &A), ExperimentError> {
        self.items
            .iter()
            .rev()
            .filter(|(i, _)| i.kind == A::KIND)
            .find_map(|(i, value)| value.downcast_ref::<A>().map(|a| (i.name.as_str(), a)))
            .ok_or_else(|| {
                ExperimentError::Invalid(format!(
                    "no earlier stage gave a {} (put {} before it)",
                    A::KIND,
                    A::GIVEN_BY
                ))
            })
    }

    /// The names of the artifacts of kind `A`, in the order given.
    pub fn names<A: Artifact>(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter(|(i, _)| i.kind == A::KIND)
            .map(|(i, _)| i.name.as_str())
            .collect()
    }

    fn given<A: Artifact>(&self) -> String {
        let names = self.names::<A>();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A researcher's kind of artifact.
    #[derive(Debug, PartialEq)]
    struct RewardModel(u32);

    impl Artifact for RewardModel {
        const KIND: &'static str = "reward model";
        const GIVEN_BY: &'static str = "a `reward_model` stage";
    }

    #[test]
    fn artifacts_are_found_by_kind_and_name_and_the_latest_by_kind() {
        let mut a = Artifacts::default();
        a.give("sft", PolicyCheckpoint("a.ckpt".into()));
        a.give("sft", RewardModel(1));
        a.give("sft_long", PolicyCheckpoint("b.ckpt".into()));
        // One name, two kinds: each its own.
        assert_eq!(a.get::<RewardModel>("sft").unwrap(), &RewardModel(1));
        assert_eq!(
            a.get::<PolicyCheckpoint>("sft").unwrap().0,
            PathBuf::from("a.ckpt")
        );
        let (name, last) = a.latest::<PolicyCheckpoint>().unwrap();
        assert_eq!((name, last.0.to_str()), ("sft_long", Some("b.ckpt")));
        // Given again, it is the latest.
        a.give("sft", PolicyCheckpoint("c.ckpt".into()));
        assert_eq!(a.latest::<PolicyCheckpoint>().unwrap().0, "sft");
        assert_eq!(a.names::<PolicyCheckpoint>(), ["sft_long", "sft"]);
        // A missing one is named, with the closest of its kind.
        let e = a.get::<PolicyCheckpoint>("sfft").unwrap_err().to_string();
        assert!(
            e.contains("policy checkpoint `sfft`") && e.contains("did you mean `sft`?"),
            "{e}"
        );
        let e = Artifacts::default()
            .latest::<RewardModel>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("put a `reward_model` stage before it"), "{e}");
    }

    #[test]
    fn a_need_is_met_by_its_name_or_by_any_of_its_kind() {
        let given = ArtifactId::of::<PolicyCheckpoint>("sft");
        assert!(Need::latest::<PolicyCheckpoint>().met_by(&given));
        assert!(Need::named::<PolicyCheckpoint>("sft").met_by(&given));
        assert!(!Need::named::<PolicyCheckpoint>("sft_long").met_by(&given));
        assert!(!Need::named::<Predictions>("sft").met_by(&given));
    }
}
