//! Learning-rate schedules: piecewise-constant rates by epoch or by step, as the articles set
//! them with Keras' `LearningRateScheduler` callback (`keras/callbacks.py`) or by hand.
//!
//! Math: with `changes = [(from_1, lr_1), (from_2, lr_2), ...]`,
//! ```text
//! lr(n) = lr_k for the change with the largest from_k <= n,  or  initial if there is none
//! ```
//! where `n` is the 0-based index of the current epoch (for [`Schedule::ByEpoch`]) or step
//! ([`Schedule::ByStep`]), i.e. the number of epochs or steps completed before it. That is the
//! `epoch` argument Keras passes to the scheduler function at the start of each epoch, so an
//! article's `if epoch <= 80: return 0.01` becomes "0.01, then the next rate from epoch 81".
//! The trainer asks for the rate before each epoch (or step) and hands it to
//! [`Optimizer::set_learning_rate`](crate::optim::Optimizer::set_learning_rate).

/// A learning rate as a function of the epoch or step.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Schedule {
    /// The same rate throughout.
    Constant(f32),
    /// `initial`, then each `(from_epoch, lr)` from that 0-based epoch on.
    ByEpoch {
        initial: f32,
        changes: Vec<(usize, f32)>,
    },
    /// `initial`, then each `(from_step, lr)` from that 0-based step (batch) on.
    ByStep {
        initial: f32,
        changes: Vec<(u64, f32)>,
    },
}

/// The rate of the change with the largest `from <= n` (the later one on a tie), else `initial`.
fn piecewise<T: Copy + Ord>(initial: f32, changes: &[(T, f32)], n: T) -> f32 {
    changes
        .iter()
        .filter(|(from, _)| *from <= n)
        .max_by_key(|(from, _)| *from)
        .map_or(initial, |&(_, lr)| lr)
}

impl Schedule {
    /// The rate for the current epoch and step, given as the 0-based counts of epochs and steps
    /// completed before it. A by-epoch schedule ignores `step`, a by-step one `epoch`.
    pub fn lr(&self, epoch: usize, step: u64) -> f32 {
        match self {
            Schedule::Constant(lr) => *lr,
            Schedule::ByEpoch { initial, changes } => piecewise(*initial, changes, epoch),
            Schedule::ByStep { initial, changes } => piecewise(*initial, changes, step),
        }
    }

    /// Whether the rate can change within an epoch (the trainer then updates it every step).
    pub fn is_by_step(&self) -> bool {
        matches!(self, Schedule::ByStep { .. })
    }

    /// NIN without BN (`docs/models.md` D.1): 0.01 up to epoch 80, 0.005 up to 140, then
    /// 0.001. The article's scheduler is `if epoch <= 80: return 0.01; if epoch <= 140:
    /// return 0.005; return 0.001` with Keras' 0-based epoch, so 0.005 from epoch 81 and 0.001
    /// from epoch 141 (0-based; the 82nd and 142nd epochs).
    pub fn nin() -> Schedule {
        Schedule::ByEpoch {
            initial: 0.01,
            changes: vec![(81, 0.005), (141, 0.001)],
        }
    }

    /// NIN with BN (`docs/models.md` D.2): 0.05 up to epoch 60, 0.01 up to 120, 0.002 up to
    /// 160, then 0.0004. The article's scheduler is `if epoch <= 60: return 0.05; if epoch <= 120:
    /// return 0.01; if epoch <= 160: return 0.002; return 0.0004`, so (0-based) 0.01 from
    /// epoch 61, 0.002 from 121 and 0.0004 from 161.
    pub fn nin_bn() -> Schedule {
        Schedule::ByEpoch {
            initial: 0.05,
            changes: vec![(61, 0.01), (121, 0.002), (161, 0.0004)],
        }
    }

    /// The step-by-step tuning series (`docs/models.md` E.4, `basic3_lr_schedule`): lr 0.01,
    /// then 0.001 after 10,000 batches, then 0.0005 after 20,000. So 0.001 from step 10,000 (the
    /// 10,001st batch) and 0.0005 from step 20,000.
    pub fn tuning_series() -> Schedule {
        Schedule::ByStep {
            initial: 0.01,
            changes: vec![(10_000, 0.001), (20_000, 0.0005)],
        }
    }

    /// He et al. 2016 for the CIFAR ResNets (`docs/models.md` E.6 names the paper; its section 4.2:
    /// "We start with a learning rate of 0.1, divide it by 10 at 32k and 48k iterations, and
    /// terminate training at 64k iterations"): 0.1, 0.01 from step 32,000, 0.001 from 48,000.
    pub fn he2016() -> Schedule {
        Schedule::ByStep {
            initial: 0.1,
            changes: vec![(32_000, 0.01), (48_000, 0.001)],
        }
    }

    /// One line for the printed recipe, e.g. `lr 0.01; 0.005 from epoch 81; 0.001 from epoch
    /// 141` (epochs and steps 0-based).
    pub fn describe(&self) -> String {
        match self {
            Schedule::Constant(lr) => format!("lr {lr} (constant)"),
            // Epochs as the training output numbers them, from 1: the change from 0-based
            // epoch `from` is the one of "Epoch {from + 1}/N".
            Schedule::ByEpoch { initial, changes } => {
                let mut s = format!("lr {initial}");
                for (from, lr) in changes {
                    s += &format!("; {lr} from epoch {}", from + 1);
                }
                s
            }
            Schedule::ByStep { initial, changes } => {
                let mut s = format!("lr {initial}");
                for (from, lr) in changes {
                    s += &format!("; {lr} after {from} steps");
                }
                s
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_ignores_epoch_and_step() {
        let s = Schedule::Constant(0.001);
        for (e, t) in [(0, 0), (1, 0), (199, 77_999), (10_000, u64::MAX)] {
            assert_eq!(s.lr(e, t), 0.001);
        }
        assert!(!s.is_by_step());
    }

    /// The article's `if epoch <= 80` functions, to compare the constructors with.
    fn nin_keras(epoch: usize) -> f32 {
        if epoch <= 80 {
            return 0.01;
        }
        if epoch <= 140 {
            return 0.005;
        }
        0.001
    }
    fn nin_bn_keras(epoch: usize) -> f32 {
        if epoch <= 60 {
            return 0.05;
        }
        if epoch <= 120 {
            return 0.01;
        }
        if epoch <= 160 {
            return 0.002;
        }
        0.0004
    }

    #[test]
    fn nin_boundaries() {
        let s = Schedule::nin();
        assert_eq!(s.lr(0, 0), 0.01);
        assert_eq!(s.lr(79, 0), 0.01);
        assert_eq!(s.lr(80, 0), 0.01);
        assert_eq!(s.lr(81, 0), 0.005);
        assert_eq!(s.lr(140, 0), 0.005);
        assert_eq!(s.lr(141, 0), 0.001);
        assert_eq!(s.lr(199, 0), 0.001);
        // A by-epoch schedule ignores the step.
        assert_eq!(s.lr(0, 1_000_000), 0.01);
        for e in 0..250 {
            assert_eq!(s.lr(e, 0), nin_keras(e), "epoch {e}");
        }
    }

    #[test]
    fn nin_bn_boundaries() {
        let s = Schedule::nin_bn();
        assert_eq!(s.lr(60, 0), 0.05);
        assert_eq!(s.lr(61, 0), 0.01);
        assert_eq!(s.lr(120, 0), 0.01);
        assert_eq!(s.lr(121, 0), 0.002);
        assert_eq!(s.lr(160, 0), 0.002);
        assert_eq!(s.lr(161, 0), 0.0004);
        for e in 0..250 {
            assert_eq!(s.lr(e, 0), nin_bn_keras(e), "epoch {e}");
        }
    }

    #[test]
    fn tuning_series_boundaries() {
        let s = Schedule::tuning_series();
        assert!(s.is_by_step());
        assert_eq!(s.lr(0, 0), 0.01);
        assert_eq!(s.lr(0, 9_999), 0.01);
        assert_eq!(s.lr(0, 10_000), 0.001);
        assert_eq!(s.lr(0, 19_999), 0.001);
        assert_eq!(s.lr(0, 20_000), 0.0005);
        assert_eq!(s.lr(0, u64::MAX), 0.0005);
        // A by-step schedule ignores the epoch.
        assert_eq!(s.lr(500, 0), 0.01);
    }

    #[test]
    fn he2016_boundaries() {
        let s = Schedule::he2016();
        assert_eq!(s.lr(0, 31_999), 0.1);
        assert_eq!(s.lr(0, 32_000), 0.01);
        assert_eq!(s.lr(0, 47_999), 0.01);
        assert_eq!(s.lr(0, 48_000), 0.001);
        assert_eq!(s.lr(0, 64_000), 0.001);
    }

    /// The change with the largest `from <= n` wins, whatever the order of the list.
    #[test]
    fn unsorted_changes_pick_the_latest_start() {
        let s = Schedule::ByEpoch {
            initial: 1.0,
            changes: vec![(10, 0.1), (5, 0.5)],
        };
        assert_eq!(s.lr(4, 0), 1.0);
        assert_eq!(s.lr(5, 0), 0.5);
        assert_eq!(s.lr(9, 0), 0.5);
        assert_eq!(s.lr(10, 0), 0.1);
    }

    #[test]
    fn describe_lists_the_changes() {
        assert_eq!(
            Schedule::nin().describe(),
            "lr 0.01; 0.005 from epoch 82; 0.001 from epoch 142"
        );
        assert_eq!(
            Schedule::tuning_series().describe(),
            "lr 0.01; 0.001 after 10000 steps; 0.0005 after 20000 steps"
        );
        assert_eq!(Schedule::Constant(0.001).describe(), "lr 0.001 (constant)");
    }
}
