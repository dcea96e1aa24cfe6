// RMSprop: the WGSL twin of crates/cpu/src/rmsprop.rs. Compiled after optim.wgsl (the
// uniform `params`, the bindings, and `element`, which skips the update when the guard is not
// finite).
//
// Math, per element i (g = grad[i]):
//   a = rho * a + (1 - rho) * (g * g);  p -= lr_t * g / (sqrt(a) + eps)

@compute @workgroup_size(WORKGROUP)
fn rmsprop(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element(gid, nwg);
    if (i >= params.n) {
        return;
    }
    let g = grad[i];
    let a = params.c1 * state1[i] + params.c2 * (g * g);
    state1[i] = a;
    param[i] -= params.lr * g / (sqrt(a) + params.eps);
}
