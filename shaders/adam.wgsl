// Adam: the WGSL twin of crates/cpu/src/adam.rs. Compiled after optim.wgsl (the
// uniform `params`, the bindings, and `element`, which skips the update when the guard is not
// finite).
//
// Math, per element i (g = grad[i]):
//   m += (g - m) * (1 - beta1);  v += (g * g - v) * (1 - beta2);  p -= m * lr_t / (sqrt(v) + eps)

@compute @workgroup_size(WORKGROUP)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element(gid, nwg);
    if (i >= params.n) {
        return;
    }
    let g = grad[i];
    let m = state1[i] + (g - state1[i]) * params.c1;
    let v = state2[i] + (g * g - state2[i]) * params.c2;
    state1[i] = m;
    state2[i] = v;
    param[i] -= m * params.lr / (sqrt(v) + params.eps);
}
