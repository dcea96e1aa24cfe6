//! `bench`: training-step throughput on random data, after a warm-up, plus where the time goes.
//!
//! Timing uses whole steps (forward, backward, optimiser) and reports the median. The
//! per-layer table comes from one extra profiled step: each layer's forward is timed
//! around its call, and each tape node's backward is attributed to the layer that recorded it.
//! A layer that records several kinds of op (a residual block) gets one sub-row per op, from
//! the timed tape's per-node forward times and the per-node backward times.

use std::time::{Duration, Instant};

use autograd::Tape;
use clap::Args;
use nn::optim::Optimizer;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;
use tensor::Tensor;

use crate::output::{self, info, Mode};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Model name (`scratchnet models` lists them).
    #[arg(long)]
    pub model: String,
    /// Images per training step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps first (buffers, caches and the allocator warm up).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// auto (a hardware GPU if there is one), cpu, or gpu (any adapter, software included).
    #[arg(long, value_enum, default_value_t = crate::device::DeviceFlag::Auto)]
    pub device: crate::device::DeviceFlag,
    /// CPU threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The GEMM under the CPU convolutions: the default (auto: version 4 with AVX-512 where
    /// the CPU has it, else with AVX2 + FMA, else version 2), version 2 (matrixmultiply), or
    /// version 4 with a given micro-kernel.
    #[arg(long, value_enum, default_value_t = GemmFlag::Auto)]
    pub gemm: GemmFlag,
    /// The CPU convolution algorithm: auto (where a version-4 GEMM kernel is active,
    /// Winograd on the 3x3 layers where it measured faster and direct on the others, else
    /// im2col), reference (the plain loops; slow), im2col (+ the GEMM above), direct (the
    /// version-4 micro-kernels reading a zero-padded image, no im2col), or winograd
    /// (F(2x2, 3x3), and F(3x3, 2x2) for the weight gradient, where it applies; direct
    /// elsewhere).
    #[arg(long, value_enum, default_value_t = ConvFlag::Auto)]
    pub conv: ConvFlag,
    /// Print one JSON object (model, batch_size, median_ms, images_per_sec, ...) and nothing else.
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    /// Print only the `train images/s: N` line.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmFlag {
    /// Version 4 with AVX-512 where the CPU has it, else with AVX2 + FMA, else version 2.
    Auto,
    /// Version 2: matrixmultiply.
    Matrixmultiply,
    /// Version 4, 14 x 32 AVX-512 micro-kernel.
    Avx512,
    /// Version 4, 6 x 16 AVX2 + FMA micro-kernel.
    Avx2,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvFlag {
    /// Where a version-4 GEMM kernel is active, Winograd on the 3x3 layers where it measured
    /// faster and direct on the others; else im2col.
    Auto,
    /// The plain loops of the definition (slow: for comparison only).
    Reference,
    /// im2col + GEMM.
    Im2col,
    /// Direct: no im2col matrix (needs a version-4 GEMM kernel).
    Direct,
    /// Winograd F(2x2, 3x3) (and F(3x3, 2x2) for the weight gradient) for 3x3 stride-1 Same
    /// layers, direct for the others (needs a version-4 GEMM kernel).
    Winograd,
}

/// The largest batch `bench` makes up: its random input must fit in memory, with room for the
/// activations of a step (a batch of 2^16 CIFAR images is 805 MB of input alone).
const MAX_BENCH_BATCH: usize = 1 << 16;

fn random_batch(
    model: &nn::Sequential,
    n: usize,
    rng: &mut StdRng,
) -> anyhow::Result<(Tensor, Vec<u32>)> {
    let mut shape = vec![n];
    shape.extend_from_slice(model.input_shape());
    let len: usize = shape.iter().product();
    let x: Vec<f32> = (0..len).map(|_| rng.random_range(0.0..1.0)).collect();
    let classes = model.output_shape()[0] as u32;
    let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..classes)).collect();
    Ok((Tensor::from_vec(shape, x)?, y))
}

pub fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.batch_size > 0 && args.steps > 0,
        "--batch-size and --steps must be at least 1"
    );
    anyhow::ensure!(
        args.batch_size <= MAX_BENCH_BATCH,
        "--batch-size {} is larger than bench allows ({MAX_BENCH_BATCH}): its random batch alone would need {:.1} GB",
        args.batch_size,
        args.batch_size as f64 * 3072.0 * 4.0 / 1e9
    );
    // The model is built (and its name checked) before any device is probed.
    let mut model = models::build(&args.model, 1)?;
    crate::device::set_threads(args.threads)?;
    use cpu::gemm_packed::{self, Kernel};
    gemm_packed::choose(match args.gemm {
        GemmFlag::Auto => None,
        GemmFlag::Matrixmultiply => Some(None),
        GemmFlag::Avx512 => Some(Some(Kernel::Avx512)),
        GemmFlag::Avx2 => Some(Some(Kernel::Avx2Fma)),
    })
    .map_err(|e| anyhow::anyhow!("--gemm: {e}"))?;
    use cpu::conv2d::{self, ConvVariant};
    conv2d::choose_variant(match args.conv {
        ConvFlag::Auto => None,
        ConvFlag::Reference => Some(ConvVariant::Reference),
        ConvFlag::Im2col => Some(ConvVariant::Im2col),
        ConvFlag::Direct => Some(ConvVariant::Direct),
        ConvFlag::Winograd => Some(ConvVariant::Winograd),
    })
    .map_err(|e| anyhow::anyhow!("--conv: {e}"))?;
    let (device, line) = crate::device::select(args.device)?;
    info!("{line}");
    if !device.is_gpu() {
        info!(
            "convolution GEMM: {}",
            gemm_packed::active().map_or("version 2 (matrixmultiply)".to_string(), |k| format!(
                "version 4, {} micro-kernel",
                k.name()
            ))
        );
    }
    model.to_device(&device)?;
    // The recipe's optimiser and weight decay, so that a step here is the step `train` runs.
    let recipe = models::recipe(&args.model)?;
    let mut opt = crate::overrides::optimizer(&recipe.optimizer, recipe.schedule.lr(0, 0));
    let wd = recipe.weight_decay;
    info!("optimiser: {}, weight decay {wd}", opt.describe());
    let mut rng = StdRng::seed_from_u64(1);
    let (x, y) = random_batch(&model, args.batch_size, &mut rng)?;
    let flops_per_image = model.training_flops_per_example();
    let peak = (!device.is_gpu()).then(|| {
        let (gflops, isa) = cpu::peak::fma_peak_gflops(300);
        info!(
            "FMA peak, measured: {gflops:.0} GFLOP/s ({isa}, {} threads, registers only)",
            rayon::current_num_threads()
        );
        gflops
    });
    info!(
        "model: {}, batch {}, {:.1} MFLOP forward and {:.1} MFLOP per training step per image (3x forward for trainable layers)",
        model.name(),
        args.batch_size,
        model.forward_flops_per_example() as f64 / 1e6,
        flops_per_image as f64 / 1e6
    );
    // The warm-up steps first, untimed; then the timed ones.
    let mut times = Vec::new();
    for s in 0..args.warmup.saturating_add(args.steps) {
        let t = Instant::now();
        let batch = nn::step::TrainBatch {
            images: x.clone(),
            labels: &y,
            seed: s as u32,
            step: s as u64,
        };
        nn::step::train_step(&mut model, opt.as_mut(), batch, wd)?;
        if s >= args.warmup {
            times.push(t.elapsed());
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    if device.is_gpu() {
        // Kernels are only recorded while the CPU walks the layers, so timing layers from
        // the host would measure recording, not the GPU.
        info!("per-layer profile: CPU only (each GPU step above is timed to completion, including its metrics readback)");
    } else if output::mode() == Mode::Normal {
        profile(
            &mut model,
            opt.as_mut(),
            &x,
            &y,
            median,
            peak.unwrap_or(f64::NAN),
        )?;
    }
    let ips = args.batch_size as f64 / median.as_secs_f64();
    let gflops = ips * flops_per_image as f64 / 1e9;
    if output::mode() == Mode::Json {
        return output::json(&json!({
            "model": args.model,
            "device": line,
            "gemm": cpu::gemm_packed::active().map_or("matrixmultiply", |k| k.name()),
            "batch_size": args.batch_size,
            "steps": times.len(),
            "median_ms": ms(median),
            "min_ms": ms(times[0]),
            "max_ms": ms(times[times.len() - 1]),
            "images_per_sec": ips,
            "effective_gflops": gflops,
            "fma_peak_gflops": peak,
            "training_mflop_per_image": flops_per_image as f64 / 1e6,
        }));
    }
    info!(
        "step: median {:.1} ms, min {:.1} ms, max {:.1} ms over {} steps",
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
    match peak {
        Some(p) => info!(
            "effective: {gflops:.1} GFLOP/s ({:.0}% of the FMA peak)",
            100.0 * gflops / p
        ),
        None => info!("effective: {gflops:.1} GFLOP/s"),
    }
    println!("train images/s: {ips:.1}");
    Ok(())
}

/// A layer's ops, when it records more than one kind (a residual block): per op name, in order
/// of first appearance, how many nodes, and their forward and backward time. Leaves (the
/// layer's parameters) are left out; the forward time of a node includes the layer's own code
/// since the node before it.
fn ops_of(
    ops: &[&'static str],
    fwd: &[Duration],
    bwd: &[Duration],
) -> Vec<(&'static str, usize, Duration, Duration)> {
    let mut out: Vec<(&'static str, usize, Duration, Duration)> = Vec::new();
    for (i, &op) in ops.iter().enumerate() {
        if op == "param" || op == "input" {
            continue;
        }
        let f = fwd.get(i).copied().unwrap_or_default();
        match out.iter_mut().find(|r| r.0 == op) {
            Some(r) => {
                r.1 += 1;
                r.2 += f;
                r.3 += bwd[i];
            }
            None => out.push((op, 1, f, bwd[i])),
        }
    }
    if out.len() > 1 {
        out
    } else {
        Vec::new()
    }
}

/// The CPU convolution variants a layer runs (`direct avx512`, `im2col matrixmultiply`, ...),
/// each named once, in order; a strided layer's input gradient is always im2col's.
fn conv_variants(
    layer: &dyn nn::Layer,
    store: &nn::ParamStore,
    n: usize,
    input: &[usize],
) -> String {
    let mut names: Vec<String> = Vec::new();
    for d in layer.convolutions(store, n, input) {
        use cpu::conv2d::ConvVariant;
        let mut here = vec![ConvVariant::describe(&d)];
        let strided_dx = d.input_gradient_as_forward().is_none() && !d.is_pointwise();
        if strided_dx && ConvVariant::for_dims(&d) != ConvVariant::Reference {
            here.push(format!(
                "im2col {} (dx)",
                cpu::gemm_packed::active().map_or("matrixmultiply", |k| k.name())
            ));
        }
        for v in here {
            if !names.contains(&v) {
                names.push(v);
            }
        }
    }
    names.join(", ")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One profiled step: forward and backward time per layer, then the optimiser.
fn profile(
    model: &mut nn::Sequential,
    opt: &mut dyn Optimizer,
    x: &Tensor,
    y: &[u32],
    median: Duration,
    peak: f64,
) -> anyhow::Result<()> {
    let mut tape = Tape::timed();
    let input = tape.input(x.clone());
    let mut ctx = nn::Ctx::new(&model.store, true, 7);
    let mut h = input;
    let batch = x.dims()[0] as f64;
    // (name, forward time, first node, end node, forward and backward FLOPs, conv variant)
    let mut rows: Vec<(String, Duration, usize, usize, f64, f64, String)> = Vec::new();
    let mut shape = model.input_shape().to_vec();
    let layers = model.layers();
    let mut i = 0;
    while i < layers.len() {
        let layer = &layers[i];
        let variant = conv_variants(layer.as_ref(), &model.store, x.dims()[0], &shape);
        let (fwd_flops, trainable) = model.layer_flops(i);
        // Backward: the input gradient (skipped for the first layer, whose input needs none)
        // and, for trainable kernels, the weight gradient; each costs the forward's FLOPs.
        let bwd_passes = usize::from(i > 0) + usize::from(trainable);
        let first = tape.len();
        let t = Instant::now();
        // As `Sequential::forward` runs it: a batch norm and the ReLU after it as one node.
        let (h2, used) = nn::layers::forward_step(layers, i, &mut tape, h, &mut ctx)?;
        h = h2;
        let mut name = format!("{} ({})", layer.name(), layer.kind());
        if used == 2 {
            name = format!("{} + {} (fused)", layer.name(), layers[i + 1].name());
        }
        rows.push((
            name,
            t.elapsed(),
            first,
            tape.len(),
            fwd_flops as f64 * batch,
            (fwd_flops as f64) * batch * bwd_passes as f64,
            variant,
        ));
        shape = layers[i + used - 1].output_shape().to_vec();
        i += used;
    }
    let first = tape.len();
    let t = Instant::now();
    let loss = tape.softmax_cross_entropy(h, y)?;
    rows.push((
        "softmax cross-entropy".into(),
        t.elapsed(),
        first,
        tape.len(),
        0.0,
        0.0,
        String::new(),
    ));
    let node_fwd = tape.forward_times();
    let node_op: Vec<&'static str> = (0..tape.len()).map(|i| tape.op(i)).collect();
    let mut node_time = vec![Duration::ZERO; tape.len()];
    let mut grads = tape.backward_timed(loss, &mut |i, d| node_time[i] += d)?;
    let updates: Vec<_> = ctx
        .param_vars()
        .filter_map(|(id, v)| grads.take(v).map(|g| (id, g)))
        .collect();
    drop((ctx, grads, tape));
    // The update runs on the model's own parameters, as in a training step: on a copy of
    // the store (which shares their buffers) each update would first copy its parameter,
    // which for basic3's 16 MB dense kernel took longer than the update itself.
    let t = Instant::now();
    opt.step(&mut model.store, updates, None)?;
    let opt_time = t.elapsed();

    println!(
        "per-layer time of one step (batch {}; GFLOP/s and % of the FMA peak for conv and dense layers):",
        x.dims()[0]
    );
    // The name column fits the longest row (a fused pair names both layers).
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(30);
    let w2 = w - 2;
    println!(
        "  {:<w$} {:>9} {:>9} {:>13} {:>13}  conv variant",
        "layer", "fwd ms", "bwd ms", "fwd GFLOP/s", "bwd GFLOP/s"
    );
    let rate = |flops: f64, d: Duration| {
        if flops == 0.0 || d.is_zero() {
            String::new()
        } else {
            let g = flops / d.as_secs_f64() / 1e9;
            format!("{g:.0} ({:.0}%)", 100.0 * g / peak)
        }
    };
    let (mut tf, mut tb) = (Duration::ZERO, Duration::ZERO);
    for (name, fwd, a, b, ff, bf, variant) in &rows {
        // Parameter leaves are recorded inside a layer's span too; they have no backward.
        let bwd: Duration = node_time[*a..*b].iter().sum();
        tf += *fwd;
        tb += bwd;
        println!(
            "  {name:<w$} {:>9.2} {:>9.2} {:>13} {:>13}  {variant}",
            ms(*fwd),
            ms(bwd),
            rate(*ff, *fwd),
            rate(*bf, bwd)
        );
        for (op, count, f, b) in ops_of(&node_op[*a..*b], &node_fwd[*a..*b], &node_time[*a..*b]) {
            println!(
                "    {:<w2$} {:>9.2} {:>9.2}",
                format!("{op} x{count}"),
                ms(f),
                ms(b)
            );
        }
    }
    println!("  {:<w$} {:>9.2} {:>9.2}", "total", ms(tf), ms(tb));
    let name = opt.describe();
    let name = name.split('(').next().unwrap_or("optimiser");
    println!(
        "  {:<w$} {:>9.2}",
        format!("optimiser ({name})"),
        ms(opt_time)
    );
    let other = median.saturating_sub(tf + tb + opt_time);
    println!(
        "  {:<w$} {:>9.2}  (median step minus the above)",
        "other",
        ms(other)
    );
    Ok(())
}
