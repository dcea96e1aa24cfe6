//! The pipeline cache: each (shader, entry point) is compiled once per context.
//!
//! Compiling a compute pipeline costs 50-500 ms on Mesa lavapipe (naga translates the WGSL to
//! SPIR-V, then the driver compiles it with LLVM), far more than a dispatch, so pipelines are
//! built on first use and reused for every later call and every shape.

use crate::error::GpuError;
use std::collections::HashMap;
use std::sync::Mutex;

/// What every shader is compiled after: the constants Rust owns, then `shaders/prelude.wgsl`.
pub fn prelude() -> String {
    format!(
        "const WORKGROUP: u32 = {}u;\n{}",
        crate::record::WORKGROUP,
        include_str!("../../../shaders/prelude.wgsl")
    )
}

/// The full WGSL text of `shader` as it is compiled: the prelude, then its own source.
pub fn full_source(shader: &Shader) -> String {
    format!("{}\n{}", prelude(), shader.source)
}

/// One WGSL shader: a name (for the cache and error messages) and its text (compiled after the
/// [`prelude`]).
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    /// Compile without the runtime checks wgpu otherwise injects (bounds clamps on every
    /// buffer index, a loop counter in every loop, guards on every integer division). Only
    /// for shaders whose Rust wrappers prove every index in range before dispatching (the
    /// GEMM family: `gemm::check_view`); the others keep the checks.
    pub trusted: bool,
}

/// Compiled shader modules by shader name, and pipelines by (shader name, entry point).
#[derive(Default)]
pub struct PipelineCache {
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<(&'static str, &'static str), wgpu::ComputePipeline>>,
}

impl PipelineCache {
    /// The pipeline for `entry` of `shader`, compiled on the first request.
    ///
    /// The bind group layout is derived from the shader (`layout: None`), so callers take it
    /// from `pipeline.get_bind_group_layout(0)`.
    pub fn get(
        &self,
        device: &wgpu::Device,
        shader: Shader,
        entry: &'static str,
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        let key = (shader.name, entry);
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(p.clone());
        }
        // Capture validation errors (a WGSL typo, a wrong entry point) as values instead of
        // letting wgpu's default handler panic.
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .modules
            .lock()
            .unwrap()
            .entry(shader.name)
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(shader.name),
                    source: wgpu::ShaderSource::Wgsl(full_source(&shader).into()),
                };
                if shader.trusted {
                    // SAFETY: `trusted` shaders index only inside the views their wrappers
                    // validated against the bound buffers, loop a bounded number of times
                    // (up to a size from the uniform), and divide only by non-zero tile
                    // sizes (see `Shader::trusted`).
                    unsafe {
                        device.create_shader_module_trusted(
                            desc,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    }
                } else {
                    device.create_shader_module(desc)
                }
            })
            .clone();
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(err) = pollster::block_on(scope.pop()) {
            // Forget the module too: it may be the invalid part.
            self.modules.lock().unwrap().remove(shader.name);
            return Err(GpuError::Device(format!(
                "building {}::{entry} failed: {err}",
                shader.name
            )));
        }
        self.pipelines.lock().unwrap().insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// How many pipelines have been compiled so far.
    pub fn len(&self) -> usize {
        self.pipelines.lock().unwrap().len()
    }

    /// True before the first pipeline is compiled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
