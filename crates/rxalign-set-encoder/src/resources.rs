//! What the `set_encoder` list policy needs before it runs (`rxalign plan
//! FILE --resources`; the shared terms are `rxalign_policy::resources`).

use rxalign_policy::resources::{FLOAT_BYTES, Footprint, Work};

use crate::SetEncoderConfig;

impl SetEncoderConfig {
    /// The list policy over `features` visit features and `drugs` drugs.
    ///
    /// Activations per row of a batch (a decision's state): its visit's
    /// multi-hot features (at most one distinct visit per row), the list's
    /// multi-hot, the action mask, the logits and their log-softmax (each
    /// `2·drugs + 1`), and four hidden-width vectors. FLOPs: `2 × parameters`
    /// per row forward (the multi-hot rows multiply dense tables), `× 3`
    /// with the backward pass.
    pub fn footprint(&self, features: usize, drugs: usize, work: Work) -> Footprint {
        let parameters = self.parameters(features, drugs);
        let actions = 2 * drugs as u128 + 1;
        let per_row = features as u128 + drugs as u128 + 1 + 3 * actions + 4 * self.hidden as u128;
        let (rows, updates, reference, shape) = match work {
            Work::Sft { batch } => (batch as u128, 1, 0, format!("{batch} decisions a step")),
            Work::Grpo {
                visits,
                group,
                ppo_epochs,
            } => {
                let rows = (visits * group * self.budget) as u128;
                (
                    rows,
                    ppo_epochs as u128,
                    parameters * FLOAT_BYTES,
                    format!(
                        "{visits} visits x {group} rollouts x at most {} decisions = {rows} decisions an update",
                        self.budget
                    ),
                )
            }
        };
        let forward = 2.0 * parameters as f64 * rows as f64;
        let acting = match work {
            Work::Sft { .. } => 0.0,
            // The rollouts' forward passes and the reference's.
            Work::Grpo { .. } => 2.0 * forward,
        };
        Footprint {
            parameters,
            trainable: parameters,
            reference_bytes: reference,
            activation_bytes: rows * per_row * FLOAT_BYTES,
            flops: 3.0 * forward * updates as f64 + acting,
            shape,
            ..Footprint::default()
        }
        .with_state()
    }
}
