// The prelude: helpers every shader may use. The pipeline cache (crates/gpu/src/pipeline.rs)
// compiles each shader as
//     const WORKGROUP: u32 = <gpu::WORKGROUP>;   (generated from the Rust constant)
//     <this file>
//     <the shader's own source>
// so the workgroup size of the one-dimensional kernels is written once, in Rust, and a shader
// says `@workgroup_size(WORKGROUP)`. (WGSL compiler messages count lines from the top of that
// concatenation: subtract this file's length and one.)

// The flat thread index of a 1-D dispatch of WORKGROUP-thread groups. The grid spills into y
// past 65,535 workgroups (gpu::grid), so the index is x + y * (groups along x) * WORKGROUP.
fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP;
}

// Whether x is finite, tested on the bit pattern (exponent all ones means inf or NaN): compilers
// may assume `x != x` is false under fast-math rules.
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}
