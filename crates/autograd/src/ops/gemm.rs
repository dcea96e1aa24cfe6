//! gemm on the tape: `y = x · w` for `x: [batch, in]`, `w: [in, out]` (a dense layer).
//!
//! Backward: `dx = dy · wᵀ` and `dw = xᵀ · dy`, both GEMMs on transposed views.

use tensor::ops::{self, Transpose};
use tensor::Result;

use crate::{Tape, Var};

impl Tape {
    pub fn gemm(&mut self, x: Var, w: Var) -> Result<Var> {
        let (xt, wt) = (self.value(x).clone(), self.value(w).clone());
        let y = ops::gemm(&xt, Transpose::No, &wt, Transpose::No)?;
        Ok(self.push("gemm", y, &[x, w], move |dy, g| {
            if g.wants(x) {
                g.add(x, ops::gemm(dy, Transpose::No, &wt, Transpose::Yes)?)?;
            }
            if g.wants(w) {
                g.add(w, ops::gemm(&xt, Transpose::Yes, dy, Transpose::No)?)?;
            }
            Ok(())
        }))
    }
}
