//! The tape: recorded values and their backward closures.

use std::time::{Duration, Instant};

use tensor::{ops, Result, Tensor, TensorError};

/// A handle to a value recorded on a [`Tape`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var(pub(crate) usize);

/// Given the gradient of the loss w.r.t. an op's output, adds the gradients of its inputs.
type Backward = Box<dyn FnOnce(&Tensor, &mut Grads) -> Result<()>>;

struct Node {
    value: Tensor,
    requires_grad: bool,
    backward: Option<Backward>,
    /// The op that recorded it (`conv2d`, `batchnorm`, ...; `input` or `param` for leaves).
    op: &'static str,
}

/// The record of one forward pass.
#[derive(Default)]
pub struct Tape {
    nodes: Vec<Node>,
    /// With [`Tape::timed`]: when the tape began, and when each node was recorded.
    clock: Option<(Instant, Vec<Instant>)>,
}

impl Tape {
    pub fn new() -> Self {
        Tape::default()
    }

    /// A tape that also notes when each node is recorded, for profilers: see
    /// [`Tape::forward_times`].
    pub fn timed() -> Self {
        Tape {
            nodes: Vec::new(),
            clock: Some((Instant::now(), Vec::new())),
        }
    }

    /// With [`Tape::timed`]: for each node, the time since the previous one was recorded (or
    /// since the tape began): the forward time of the op that recorded it, plus whatever the
    /// caller did in between. Empty for an untimed tape.
    pub fn forward_times(&self) -> Vec<Duration> {
        let Some((start, at)) = &self.clock else {
            return Vec::new();
        };
        let mut prev = *start;
        at.iter()
            .map(|&t| {
                let d = t - prev;
                prev = t;
                d
            })
            .collect()
    }

    /// The op that recorded node `index` (`input` and `param` for leaves).
    pub fn op(&self, index: usize) -> &'static str {
        self.nodes[index].op
    }

    fn record(&mut self, node: Node) -> Var {
        self.nodes.push(node);
        if let Some((_, at)) = &mut self.clock {
            at.push(Instant::now());
        }
        Var(self.nodes.len() - 1)
    }

    /// Records a value that needs no gradient (a batch of images, say).
    pub fn input(&mut self, value: Tensor) -> Var {
        self.leaf(value, false)
    }

    /// Records a value whose gradient [`Tape::backward`] will compute (a parameter).
    pub fn param(&mut self, value: Tensor) -> Var {
        self.leaf(value, true)
    }

    fn leaf(&mut self, value: Tensor, requires_grad: bool) -> Var {
        self.record(Node {
            value,
            requires_grad,
            backward: None,
            op: if requires_grad { "param" } else { "input" },
        })
    }

    /// The recorded value of `v`.
    pub fn value(&self, v: Var) -> &Tensor {
        &self.nodes[v.0].value
    }

    /// Whether any gradient flows into `v`.
    pub fn requires_grad(&self, v: Var) -> bool {
        self.nodes[v.0].requires_grad
    }

    /// Records the output of op `op`. `backward` runs only if some input requires a gradient.
    pub fn push(
        &mut self,
        op: &'static str,
        value: Tensor,
        inputs: &[Var],
        backward: impl FnOnce(&Tensor, &mut Grads) -> Result<()> + 'static,
    ) -> Var {
        let requires_grad = inputs.iter().any(|&v| self.requires_grad(v));
        self.record(Node {
            value,
            requires_grad,
            backward: requires_grad.then(|| Box::new(backward) as Backward),
            op,
        })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Back-propagates from the scalar `loss`, returning the gradient of every value that
    /// requires one. Each backward closure runs once, so a tape can be walked only once.
    pub fn backward(&mut self, loss: Var) -> Result<Grads> {
        self.backward_timed(loss, &mut |_, _| {})
    }

    /// [`Tape::backward`], calling `timer(node index, time spent)` after each node's backward
    /// (for per-layer profiles).
    pub fn backward_timed(
        &mut self,
        loss: Var,
        timer: &mut dyn FnMut(usize, std::time::Duration),
    ) -> Result<Grads> {
        let value = &self.nodes[loss.0].value;
        if value.numel() != 1 {
            return Err(TensorError::shape(
                "backward",
                format!("the loss must be a scalar, got shape {}", value.shape()),
            ));
        }
        let mut grads = Grads {
            grads: vec![None; self.nodes.len()],
            requires: self.nodes.iter().map(|n| n.requires_grad).collect(),
        };
        // The seed d(loss)/d(loss) = 1 stays on the CPU whatever the loss's device: the loss
        // ops read it as a number (see ops/softmax_xent.rs), so no GPU readback is needed.
        grads.grads[loss.0] = Some(Tensor::full(value.shape().clone(), 1.0));
        for i in (0..=loss.0).rev() {
            let Some(backward) = self.nodes[i].backward.take() else {
                continue;
            };
            // Nodes no gradient reached (outputs unused by the loss) are skipped.
            if let Some(g) = grads.grads[i].take() {
                let start = std::time::Instant::now();
                backward(&g, &mut grads)?;
                timer(i, start.elapsed());
                grads.grads[i] = Some(g);
            }
        }
        Ok(grads)
    }
}

/// Gradients produced by [`Tape::backward`], indexed by [`Var`].
pub struct Grads {
    grads: Vec<Option<Tensor>>,
    requires: Vec<bool>,
}

impl Grads {
    /// Whether `v` wants a gradient: backward closures skip work for inputs that do not.
    pub fn wants(&self, v: Var) -> bool {
        self.requires[v.0]
    }

    /// Adds `g` to the gradient of `v` (a value used twice receives the sum).
    pub fn add(&mut self, v: Var, g: Tensor) -> Result<()> {
        if !self.requires[v.0] {
            return Ok(());
        }
        match &mut self.grads[v.0] {
            // Sum into whichever of the two is not shared: adding into a shared tensor (a
            // gradient passed through unchanged, as a residual shortcut's) copies it first.
            Some(acc) if acc.is_shared() && !g.is_shared() => {
                let mut g = g;
                ops::add_assign(&mut g, acc)?;
                *acc = g;
                Ok(())
            }
            Some(acc) => ops::add_assign(acc, &g),
            slot @ None => {
                *slot = Some(g);
                Ok(())
            }
        }
    }

    pub fn get(&self, v: Var) -> Option<&Tensor> {
        self.grads[v.0].as_ref()
    }

    pub fn take(&mut self, v: Var) -> Option<Tensor> {
        self.grads[v.0].take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_carry_their_op_and_a_timed_tape_their_forward_times() {
        let x = Tensor::from_vec([2, 2], vec![1.0, -2.0, 3.0, -4.0]).unwrap();
        for timed in [false, true] {
            let mut t = if timed { Tape::timed() } else { Tape::new() };
            let a = t.input(x.clone());
            let w = t.param(x.clone());
            let s = t.add(a, w).unwrap();
            let r = t.relu(s).unwrap();
            let ops: Vec<&str> = (0..t.len()).map(|i| t.op(i)).collect();
            assert_eq!(ops, ["input", "param", "add", "relu"]);
            assert_eq!(t.value(r).to_vec(), [2.0, 0.0, 6.0, 0.0]);
            let times = t.forward_times();
            if timed {
                // One per node, and together no longer than the tape has existed.
                assert_eq!(times.len(), t.len());
                let (start, _) = t.clock.as_ref().unwrap();
                assert!(times.iter().sum::<Duration>() <= start.elapsed());
            } else {
                assert!(times.is_empty());
            }
        }
    }
}
