// SGD, plain and with (Nesterov) momentum: the WGSL twin of crates/cpu/src/sgd.rs. Compiled after optim.wgsl (the
// uniform `params`, the bindings, and `element`, which skips the update when the guard is not
// finite).
//
// Math, per element i (g = grad[i]):
//   sgd_plain      p -= lr * g                                       (momentum 0)
//   sgd_momentum   v = mom * v - lr * g;  p += v                     (NESTEROV clear)
//                                         p += mom * v - lr * g      (NESTEROV set)

@compute @workgroup_size(WORKGROUP)
fn sgd_plain(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element(gid, nwg);
    if (i >= params.n) {
        return;
    }
    param[i] -= params.lr * grad[i];
}

@compute @workgroup_size(WORKGROUP)
fn sgd_momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element(gid, nwg);
    if (i >= params.n) {
        return;
    }
    let g = grad[i];
    let mom = params.c1;
    let v = mom * state1[i] - params.lr * g;
    state1[i] = v;
    if ((params.flags & NESTEROV) != 0u) {
        param[i] += mom * v - params.lr * g;
    } else {
        param[i] += v;
    }
}
