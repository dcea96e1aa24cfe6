//! Neural-network building blocks on top of the tape: layers, initialisers, the sequential
//! model and its Keras-style summary, optimisers, the training step, and checkpoints.

pub mod atomic_file;
pub mod checkpoint;
pub mod init;
pub mod layers;
pub mod optim;
pub mod param;
pub mod regularizer;
pub mod schedule;
pub mod sequential;
pub mod step;
pub mod summary;

mod error;

pub use error::NnError;
pub use init::Init;
pub use layers::{Activation, Ctx, Layer};
pub use param::{Param, ParamId, ParamKind, ParamStore};
pub use sequential::{Sequential, SequentialBuilder};
pub use tensor::Padding;
