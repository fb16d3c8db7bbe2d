/* grove: reverse-mode differentiation of traced functions, graph to graph.
 *
 * The VJP of every primitive is appended to a copy of the graph as ordinary
 * nodes, so the result is again a gv_fn: it can be evaluated, compiled, and
 * differentiated again (grad of grad). Inputs that are not float (labels,
 * keys) get no gradient; lax.stop_gradient and the random ops block it.
 *
 * The argument to differentiate is picked like JAX's argnums: the input tree
 * of a traced function is usually a tuple (params, batch, key), and argnum
 * selects child `argnum` of its root (gv_value_and_grad), or any subtree by
 * path (gv_value_and_grad_path; "" = all inputs). */
#ifndef GROVE_AUTODIFF_H
#define GROVE_AUTODIFF_H

#include "grove/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* jax.value_and_grad(f, argnums=argnum, has_aux=has_aux).
 * f's output must be a float scalar leaf, or with has_aux a container of
 * two children (loss, aux) whose first is a float scalar leaf.
 * The new function takes f's inputs and returns the tuple
 *   (loss, grads)            or, with has_aux,   ((loss, aux), grads)
 * where grads has the structure of the selected argument. Returns a new
 * gv_fn (gv_fn_free), or NULL with the error set (e.g. a non-scalar loss,
 * an integer leaf in the differentiated argument: its path is named). */
gv_fn *gv_value_and_grad(const gv_fn *f, int argnum, bool has_aux);
gv_fn *gv_value_and_grad_path(const gv_fn *f, const char *wrt, bool has_aux);

/* Inside a trace, jax.value_and_grad(loss_fn, argnum, has_aux)(*args) in
 * one call, as a JAX train step writes it: loss_fn is traced for args'
 * shapes and dtypes, differentiated, and inlined into g with args (a tree
 * of values of g: loss_fn's inputs). Returns (loss, grads) or, with
 * has_aux, ((loss, aux), grads), owned by g (pack.h); NULL after a trace
 * error in g. The tracing happens when the caller is traced (once per
 * compile), not when the compiled plan runs. */
gv_tree *gv_value_and_grad_call(gv_graph *g, gv_trace_fn loss_fn, void *userdata,
                                const gv_tree *args, int argnum, bool has_aux);

/* jax.grad: returns grads, or (grads, aux) with has_aux. */
gv_fn *gv_grad(const gv_fn *f, int argnum, bool has_aux);

/* jax.vjp as one function: the new function takes the tuple
 * (f's inputs, cotangents shaped like f's outputs) and returns
 * (f's outputs, cotangent of the subtree at path wrt). */
gv_fn *gv_vjp(const gv_fn *f, const char *wrt);

/* jax.jvp by double VJP (the transpose of the linear VJP map): the new
 * function takes (f's inputs, tangents shaped like the subtree at wrt) and
 * returns (f's outputs, tangents of the outputs). Enough for
 * Hessian-vector products: jvp of a gradient function. */
gv_fn *gv_jvp(const gv_fn *f, const char *wrt);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
