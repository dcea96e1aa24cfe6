//! `sum(x ⊙ c)` for a constant tensor `c`: a scalar from any tensor, whose gradient is `c`.
//! Used to reduce an op's output to a scalar when checking its backward (and for weighted sums).

use tensor::{Result, Tensor, TensorError};

use crate::{Tape, Var};

impl Tape {
    pub fn sum_product(&mut self, x: Var, c: &Tensor) -> Result<Var> {
        let xv = self.value(x);
        if xv.shape() != c.shape() {
            return Err(TensorError::shape(
                "sum_product",
                format!("shapes differ: {} vs {}", xv.shape(), c.shape()),
            ));
        }
        let s: f64 = xv
            .as_slice()
            .iter()
            .zip(c.as_slice())
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        let c = c.clone();
        Ok(self.push(
            "sum_product",
            Tensor::scalar(s as f32),
            &[x],
            move |dl, g| {
                let scale = dl.item()?;
                let mut dx = c.clone();
                dx.data_mut().iter_mut().for_each(|v| *v *= scale);
                g.add(x, dx)
            },
        ))
    }
}
