//! Every differentiable op's backward against central finite differences, on awkward shapes,
//! and a whole small model end to end.

mod common;

use autograd::gradcheck::check;
use autograd::{Tape, Var};
use common::random;
use tensor::{Padding, Result, Tensor};

const EPS: f32 = 1e-2;
const TOL: f64 = 2e-2;

/// Reduces any op output to a scalar with fixed random weights, so every output element
/// contributes a different amount to the checked gradient.
fn project(tape: &mut Tape, y: Var, seed: u64) -> Result<Var> {
    let w = random(tape.value(y).shape().clone(), seed, -1.0, 1.0);
    tape.sum_product(y, &w)
}

#[test]
fn conv2d_gradients() {
    // (n, h, w, c_in, k, c_out, stride, padding)
    let cases = [
        (1, 5, 5, 1, 3, 2, 1, Padding::Same),
        (2, 6, 5, 3, 3, 5, 2, Padding::Same),
        (2, 7, 7, 2, 5, 3, 1, Padding::Valid),
        (1, 6, 6, 3, 2, 4, 2, Padding::Valid),
        (3, 4, 3, 5, 1, 3, 1, Padding::Same),
        (1, 7, 6, 3, 4, 2, 2, Padding::Same),
    ];
    for (i, &(n, h, w, ci, k, co, s, p)) in cases.iter().enumerate() {
        let seed = 100 + i as u64 * 10;
        let inputs = [
            random([n, h, w, ci], seed, -1.0, 1.0),
            random([k, k, ci, co], seed + 1, -1.0, 1.0),
            random([co], seed + 2, -1.0, 1.0),
        ];
        let r = check(
            &inputs,
            &|t, v| {
                let y = t.conv2d(v[0], v[1], Some(v[2]), s, p, false)?;
                project(t, y, seed + 3)
            },
            EPS,
            TOL,
            40,
        )
        .unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert!(r.checked > 40, "case {i} checked only {}", r.checked);
    }
}

/// Conv with the fused ReLU; a small step, since pre-activations near 0 are kinks.
#[test]
fn conv2d_relu_gradients() {
    for (i, &(n, h, w, ci, k, co, s, p)) in [
        (2, 6, 5, 3, 3, 4, 1, Padding::Same),
        (1, 7, 7, 2, 3, 3, 2, Padding::Valid),
    ]
    .iter()
    .enumerate()
    {
        let seed = 500 + i as u64 * 10;
        let inputs = [
            random([n, h, w, ci], seed, -1.0, 1.0),
            random([k, k, ci, co], seed + 1, -1.0, 1.0),
            random([co], seed + 2, -0.5, 0.5),
        ];
        check(
            &inputs,
            &|t, v| {
                let y = t.conv2d(v[0], v[1], Some(v[2]), s, p, true)?;
                project(t, y, seed + 3)
            },
            1e-3,
            TOL,
            40,
        )
        .unwrap_or_else(|e| panic!("case {i}: {e}"));
    }
}

/// Conv + ReLU + max pool as one node: routed into the convolution's gradients (2x2 / 2
/// pools over stride-1 layers) or through the pool's backward first (an overlapping pool, a
/// strided layer); a small step, as for conv + ReLU.
#[test]
fn conv2d_relu_maxpool_gradients() {
    use tensor::ops::PoolWindow;
    for (i, &(n, h, w, ci, co, s, pk, ps, pp)) in [
        (2, 6, 6, 3, 4, 1, 2, 2, Padding::Valid),
        (1, 7, 7, 2, 3, 1, 2, 2, Padding::Same),
        (1, 7, 6, 2, 3, 1, 3, 2, Padding::Same),
        (2, 7, 7, 2, 3, 2, 2, 2, Padding::Valid),
    ]
    .iter()
    .enumerate()
    {
        let seed = 900 + i as u64 * 10;
        let inputs = [
            random([n, h, w, ci], seed, -1.0, 1.0),
            random([3, 3, ci, co], seed + 1, -1.0, 1.0),
            random([co], seed + 2, -0.5, 0.5),
        ];
        let pool = PoolWindow {
            size: pk,
            stride: ps,
            padding: pp,
        };
        let r = check(
            &inputs,
            &|t, v| {
                let y = t.conv2d_relu_maxpool(v[0], v[1], Some(v[2]), s, Padding::Same, pool)?;
                project(t, y, seed + 3)
            },
            1e-3,
            TOL,
            40,
        )
        .unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert!(r.checked > 40, "case {i} checked only {}", r.checked);
    }
}

/// The fused node gives the values and gradients of conv2d (ReLU) then maxpool2d.
#[test]
fn conv2d_relu_maxpool_equals_its_two_ops() {
    use tensor::ops::PoolWindow;
    let x = random([3, 8, 9, 5], 1, -1.0, 1.0);
    let w = random([3, 3, 5, 6], 2, -1.0, 1.0);
    let b = random([6], 3, -0.5, 0.5);
    let pool = PoolWindow {
        size: 2,
        stride: 2,
        padding: Padding::Same,
    };
    let run = |fused: bool| -> Result<Vec<Vec<f32>>> {
        let mut t = Tape::new();
        let (xv, wv, bv) = (t.param(x.clone()), t.param(w.clone()), t.param(b.clone()));
        let p = if fused {
            t.conv2d_relu_maxpool(xv, wv, Some(bv), 1, Padding::Same, pool)?
        } else {
            let y = t.conv2d(xv, wv, Some(bv), 1, Padding::Same, true)?;
            t.maxpool2d(y, 2, 2, Padding::Same)?
        };
        let loss = project(&mut t, p, 4)?;
        let value = t.value(p).as_slice().to_vec();
        let mut grads = t.backward(loss)?;
        let mut out = vec![value];
        for v in [xv, wv, bv] {
            out.push(grads.take(v).expect("a gradient").as_slice().to_vec());
        }
        Ok(out)
    };
    let (fused, apart) = (run(true).unwrap(), run(false).unwrap());
    for (k, (f, a)) in ["p", "dx", "dw", "db"].iter().zip(fused.iter().zip(&apart)) {
        let worst = f
            .iter()
            .zip(a)
            .map(|(f, a)| (f - a).abs())
            .fold(0.0, f32::max);
        assert!(worst <= 1e-4, "{k}: differs by {worst}");
    }
}

#[test]
fn maxpool2d_gradients() {
    for (i, &(n, h, w, c, k, s, p)) in [
        (2, 4, 4, 3, 2, 2, Padding::Valid),
        (1, 7, 5, 2, 3, 2, Padding::Same),
        (2, 5, 5, 1, 3, 1, Padding::Valid),
        (1, 6, 7, 5, 2, 3, Padding::Same),
    ]
    .iter()
    .enumerate()
    {
        // Distinct values spaced 0.05 apart (more than 2·EPS), so no window's maximum changes
        // under the finite-difference step.
        let len = n * h * w * c;
        let mut perm: Vec<usize> = (0..len).collect();
        let r = random([len], 7 + i as u64, 0.0, 1.0);
        perm.sort_by(|&a, &b| r.as_slice()[a].total_cmp(&r.as_slice()[b]));
        let mut vals = vec![0.0; len];
        for (rank, &idx) in perm.iter().enumerate() {
            vals[idx] = rank as f32 * 0.05;
        }
        let x = Tensor::from_vec([n, h, w, c], vals).unwrap();
        check(
            &[x],
            &|t, v| {
                let y = t.maxpool2d(v[0], k, s, p)?;
                project(t, y, 70 + i as u64)
            },
            EPS,
            TOL,
            200,
        )
        .unwrap_or_else(|e| panic!("case {i}: {e}"));
    }
}

#[test]
fn dense_gradients() {
    for (i, &(n, fin, fout)) in [(1, 1, 1), (3, 7, 5), (5, 33, 10)].iter().enumerate() {
        let seed = 300 + i as u64 * 10;
        let inputs = [
            random([n, fin], seed, -1.0, 1.0),
            random([fin, fout], seed + 1, -1.0, 1.0),
            random([fout], seed + 2, -1.0, 1.0),
        ];
        check(
            &inputs,
            &|t, v| {
                let y = t.gemm(v[0], v[1])?;
                let y = t.bias_add(y, v[2])?;
                project(t, y, seed + 3)
            },
            EPS,
            TOL,
            50,
        )
        .unwrap_or_else(|e| panic!("case {i}: {e}"));
    }
}

#[test]
fn relu_gradient() {
    // Values kept at least 0.05 away from the kink at 0.
    let mut x = random([3, 5, 7], 11, 0.05, 1.0);
    for (i, v) in x.data_mut().iter_mut().enumerate() {
        if i % 3 == 0 {
            *v = -*v;
        }
    }
    check(
        &[x],
        &|t, v| {
            let y = t.relu(v[0])?;
            project(t, y, 12)
        },
        EPS,
        TOL,
        200,
    )
    .unwrap();
}

#[test]
fn dropout_gradient() {
    // A fixed seed fixes the mask, so dropout is linear in its input and FD is exact.
    let x = random([4, 3, 3, 5], 21, -1.0, 1.0);
    check(
        &[x],
        &|t, v| {
            let y = t.dropout(v[0], 0.4, 99)?;
            project(t, y, 22)
        },
        EPS,
        TOL,
        200,
    )
    .unwrap();
}

#[test]
fn flatten_and_softmax_cross_entropy_gradient() {
    let x = random([5, 2, 1, 4], 31, -3.0, 3.0);
    let labels = [0u32, 7, 3, 7, 1];
    check(
        &[x],
        &|t, v| {
            let y = t.flatten(v[0])?;
            t.softmax_cross_entropy(y, &labels)
        },
        EPS,
        TOL,
        40,
    )
    .unwrap();
}

/// A small model made of every layer kind: conv (same, stride 2, valid), pool, dropout,
/// flatten, dense; its parameter gradients against finite differences of its loss.
#[test]
fn whole_model_gradients() {
    use nn::Activation::{Linear, Relu};
    use nn::{Init, Padding::*, SequentialBuilder};
    let mut b = SequentialBuilder::new("tiny", &[9, 9, 3], 5);
    b.conv2d(4, 3, 1, Same, Relu, Init::GlorotUniform)
        .unwrap()
        .conv2d(5, 3, 2, Same, Relu, Init::HeNormal)
        .unwrap()
        .maxpool2d(2, 2, Valid)
        .unwrap()
        .dropout(0.3)
        .unwrap()
        .flatten()
        .dense(7, Relu, Init::GlorotUniform)
        .unwrap()
        .dense(3, Linear, Init::GlorotUniform)
        .unwrap();
    let model = b.build();
    let x = random([2, 9, 9, 3], 41, 0.0, 1.0);
    let labels = [2u32, 0];
    let params: Vec<Tensor> = model.store.iter().map(|(_, p)| p.value.clone()).collect();
    let r = check(
        &params,
        &|t, vars| {
            let mut ctx = nn::Ctx::new(&model.store, true, 1234);
            let mut h = t.input(x.clone());
            // Re-route each layer's parameter lookups to the checker's variables.
            for (i, &v) in vars.iter().enumerate() {
                ctx.bind(nn::ParamId(i), v);
            }
            for layer in model.layers() {
                h = layer
                    .forward(t, h, &mut ctx)
                    .map_err(|e| tensor::TensorError::argument("model", e.to_string()))?;
            }
            t.softmax_cross_entropy(h, &labels)
        },
        // A smaller step than the single-op checks: ReLU kinks are everywhere in a model.
        1e-3,
        TOL,
        25,
    )
    .unwrap();
    assert!(r.checked >= 100, "checked {}", r.checked);
}

#[test]
fn batchnorm_training_gradients() {
    for (i, shape) in [vec![6, 5], vec![2, 3, 4, 5], vec![1, 5, 3, 7]]
        .into_iter()
        .enumerate()
    {
        let c = *shape.last().unwrap();
        let seed = 600 + i as u64 * 10;
        let inputs = [
            random(shape.clone(), seed, -2.0, 2.0),
            random([c], seed + 1, 0.5, 1.5),
            random([c], seed + 2, -0.5, 0.5),
        ];
        check(
            &inputs,
            &|t, v| {
                let (y, _, _) = t.batchnorm_train(v[0], v[1], v[2], 1e-3)?;
                project(t, y, seed + 3)
            },
            1e-2,
            TOL,
            60,
        )
        .unwrap_or_else(|e| panic!("case {i}: {e}"));
    }
}

/// Batch norm and ReLU as one node: its gradients by finite differences (a small step, as
/// for conv2d + ReLU, so no input crosses the ReLU's kink), and equal to those of the two
/// nodes it replaces.
#[test]
fn batchnorm_relu_training_gradients() {
    for (i, shape) in [vec![6, 5], vec![2, 3, 4, 5], vec![1, 5, 3, 7]]
        .into_iter()
        .enumerate()
    {
        let c = *shape.last().unwrap();
        let seed = 650 + i as u64 * 10;
        let inputs = [
            random(shape.clone(), seed, -2.0, 2.0),
            random([c], seed + 1, 0.5, 1.5),
            random([c], seed + 2, -0.5, 0.5),
        ];
        check(
            &inputs,
            &|t, v| {
                let (y, _, _) = t.batchnorm_relu_train(v[0], v[1], v[2], 1e-3)?;
                project(t, y, seed + 3)
            },
            1e-3,
            TOL,
            60,
        )
        .unwrap_or_else(|e| panic!("case {i}: {e}"));
        // The same loss through batchnorm then relu: equal values and gradients.
        let grads = |fused: bool| {
            let mut t = Tape::new();
            let v: Vec<Var> = inputs.iter().map(|x| t.param(x.clone())).collect();
            let y = if fused {
                t.batchnorm_relu_train(v[0], v[1], v[2], 1e-3).unwrap().0
            } else {
                let (y, _, _) = t.batchnorm_train(v[0], v[1], v[2], 1e-3).unwrap();
                t.relu(y).unwrap()
            };
            let loss = project(&mut t, y, seed + 3).unwrap();
            let value = t.value(y).as_slice().to_vec();
            let mut g = t.backward(loss).unwrap();
            let gs: Vec<Vec<f32>> = v
                .iter()
                .map(|&x| g.take(x).unwrap().as_slice().to_vec())
                .collect();
            (value, gs)
        };
        let (fused, plain) = (grads(true), grads(false));
        let near = |a: &[f32], b: &[f32], what: &str| {
            for (k, (x, y)) in a.iter().zip(b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-5 * y.abs().max(1.0),
                    "case {i} {what}[{k}]: {x} vs {y}"
                );
            }
        };
        near(&fused.0, &plain.0, "y");
        for (k, (a, b)) in fused.1.iter().zip(&plain.1).enumerate() {
            near(a, b, &format!("grad {k}"));
        }
    }
}

#[test]
fn pooling_and_lrn_gradients() {
    let x = random([2, 7, 5, 3], 700, -1.0, 1.0);
    for (i, (k, s, p)) in [
        (2, 2, Padding::Valid),
        (3, 2, Padding::Same),
        (3, 1, Padding::Same),
    ]
    .into_iter()
    .enumerate()
    {
        check(
            std::slice::from_ref(&x),
            &|t, v| {
                let y = t.avgpool2d(v[0], k, s, p)?;
                project(t, y, 701 + i as u64)
            },
            EPS,
            TOL,
            100,
        )
        .unwrap_or_else(|e| panic!("avgpool case {i}: {e}"));
    }
    check(
        std::slice::from_ref(&x),
        &|t, v| {
            let y = t.global_avgpool(v[0])?;
            project(t, y, 710)
        },
        EPS,
        TOL,
        100,
    )
    .unwrap();
    let params = tensor::ops::LrnParams {
        depth_radius: 2,
        bias: 1.0,
        alpha: 0.1,
        beta: 0.75,
    };
    let x = random([2, 3, 3, 7], 720, -2.0, 2.0);
    check(
        &[x],
        &|t, v| {
            let y = t.lrn(v[0], params)?;
            project(t, y, 721)
        },
        1e-3,
        TOL,
        126,
    )
    .unwrap();
}

#[test]
fn residual_add_and_shortcut_gradients() {
    // y = x + subsample_pad(x) is ill-typed; check each piece and their sum on compatible shapes.
    let a = random([2, 4, 4, 3], 800, -1.0, 1.0);
    let b = random([2, 4, 4, 3], 801, -1.0, 1.0);
    check(
        &[a.clone(), b],
        &|t, v| {
            let y = t.add(v[0], v[1])?;
            project(t, y, 802)
        },
        EPS,
        TOL,
        96,
    )
    .unwrap();
    // The sum and its ReLU as one op (a residual block's end): sums kept at least 0.03 away
    // from the kink (a: 0.05..1 in size, a third of them negative; b: within 0.02); and a
    // value used as both operands (its gradient is the sum of the two).
    let mut a = random([2, 4, 4, 3], 805, 0.05, 1.0);
    for (i, v) in a.data_mut().iter_mut().enumerate() {
        if i % 3 == 0 {
            *v = -*v;
        }
    }
    let b = random([2, 4, 4, 3], 806, -0.02, 0.02);
    check(
        &[a.clone(), b],
        &|t, v| {
            let y = t.add_relu(v[0], v[1])?;
            project(t, y, 807)
        },
        EPS,
        TOL,
        96,
    )
    .unwrap();
    check(
        &[a],
        &|t, v| {
            let y = t.add_relu(v[0], v[0])?;
            project(t, y, 809)
        },
        EPS,
        TOL,
        96,
    )
    .unwrap();
    let x = random([2, 5, 5, 3], 803, -1.0, 1.0);
    check(
        &[x],
        &|t, v| {
            let y = t.subsample_pad(v[0], 2, 1, 2)?;
            assert_eq!(t.value(y).dims(), &[2, 3, 3, 6]);
            project(t, y, 804)
        },
        EPS,
        TOL,
        150,
    )
    .unwrap();
}

/// A small ResNet with both shortcut kinds and batch norm, end to end.
#[test]
fn residual_model_gradients() {
    use nn::Activation::{Linear, Relu};
    use nn::{Init, Padding::*, SequentialBuilder};
    let mut b = SequentialBuilder::new("tiny_resnet", &[6, 6, 3], 9);
    b.conv2d(4, 3, 1, Same, Linear, Init::HeNormal)
        .unwrap()
        .batchnorm()
        .activation(Relu);
    b.residual_block(4, 1, false, Init::HeNormal).unwrap();
    b.residual_block(6, 2, false, Init::HeNormal).unwrap();
    b.residual_block(8, 2, true, Init::HeNormal).unwrap();
    b.global_avgpool()
        .unwrap()
        .dense(3, Linear, Init::GlorotUniform)
        .unwrap();
    let model = b.build();
    let x = random([3, 6, 6, 3], 900, 0.0, 1.0);
    let labels = [2u32, 0, 1];
    // Moving statistics are not trained; check only the trainable parameters.
    let trainable: Vec<usize> = model
        .store
        .iter()
        .filter(|(_, p)| p.trainable)
        .map(|(id, _)| id.0)
        .collect();
    let params: Vec<Tensor> = trainable
        .iter()
        .map(|&i| model.store.get(nn::ParamId(i)).value.clone())
        .collect();
    let r = check(
        &params,
        &|t, vars| {
            let mut ctx = nn::Ctx::new(&model.store, true, 7);
            for (&i, &v) in trainable.iter().zip(vars) {
                ctx.bind(nn::ParamId(i), v);
            }
            let mut h = t.input(x.clone());
            for layer in model.layers() {
                h = layer
                    .forward(t, h, &mut ctx)
                    .map_err(|e| tensor::TensorError::argument("model", e.to_string()))?;
            }
            t.softmax_cross_entropy(h, &labels)
        },
        1e-3,
        5e-2,
        12,
    )
    .unwrap();
    assert!(r.checked >= 100, "checked {}", r.checked);
}
