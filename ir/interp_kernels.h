/* interp_kernels.h: private to ir/: what the reference kernels of interp_ops.c and
 * interp_nn.c share. interp_ops.c holds the op table and the general helpers (the fp32 GEMM,
 * scalar conversion); interp_nn.c the kernels of the convolutional ops, declared here for the
 * table.
 */
#ifndef LNSC_IR_INTERP_KERNELS_H
#define LNSC_IR_INTERP_KERNELS_H

#include "ir/ir.h"

/* Y[i, j] (+)= sum_k A(i, k) B[k, j], i < M, j < N, k < K: A(i, k) at A[i * ars + k * acs]
 * (so a transposed operand needs no copy), B's rows ldb apart, Y's ldy apart, each row of B
 * and Y contiguous. acc = 0 overwrites Y, else adds to it. Each Y[i, j] is summed over k in
 * increasing order, in fp32 (LNS.md 4 leaves the order to the implementation). */
void ir_interp_gemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t ars, int64_t acs,
		    const float *B, int64_t ldb, float *Y, int64_t ldy, int acc);

/* Stores v as element i of an array of dtype dt (not LNS), converted as Cast converts: floats
 * rounded, integers truncated toward zero and saturated, bool v != 0. */
void ir_interp_store_scalar(IrDType dt, void *p, int64_t i, double v);

/* The kernels of interp_nn.c (IrInterpFn). */
int ir_k_conv(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
int ir_k_conv_grad_x(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
int ir_k_conv_grad_w(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
int ir_k_batch_norm(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
int ir_k_batch_norm_grad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
int ir_k_max_pool(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
int ir_k_avg_pool(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
int ir_k_max_pool_grad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
int ir_k_avg_pool_grad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
int ir_k_pad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
int ir_k_clip(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
int ir_k_clip_grad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
int ir_k_assign(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);

#endif
