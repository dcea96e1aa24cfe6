//! The tape: recorded values and their backward closures.

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
}

/// The record of one forward pass.
#[derive(Default)]
pub struct Tape {
    nodes: Vec<Node>,
}

impl Tape {
    pub fn new() -> Self {
        Tape::default()
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
        self.nodes.push(Node {
            value,
            requires_grad,
            backward: None,
        });
        Var(self.nodes.len() - 1)
    }

    /// The recorded value of `v`.
    pub fn value(&self, v: Var) -> &Tensor {
        &self.nodes[v.0].value
    }

    /// Whether any gradient flows into `v`.
    pub fn requires_grad(&self, v: Var) -> bool {
        self.nodes[v.0].requires_grad
    }

    /// Records an op's output. `backward` runs only if some input requires a gradient.
    pub fn push(
        &mut self,
        value: Tensor,
        inputs: &[Var],
        backward: impl FnOnce(&Tensor, &mut Grads) -> Result<()> + 'static,
    ) -> Var {
        let requires_grad = inputs.iter().any(|&v| self.requires_grad(v));
        self.nodes.push(Node {
            value,
            requires_grad,
            backward: requires_grad.then(|| Box::new(backward) as Backward),
        });
        Var(self.nodes.len() - 1)
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
