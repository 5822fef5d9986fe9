/* LG_HD: a function compiled for the host and, under nvcc, the device too,
 * so that the CPU and CUDA backends share one copy of some arithmetic
 * (wino_tf.h, adam_math.h) and the CPU tests exercise it. */
#ifndef LIPGAN_HOSTDEV_H
#define LIPGAN_HOSTDEV_H

#ifdef __CUDACC__
#define LG_HD __host__ __device__ __forceinline__
#else
#define LG_HD static inline
#endif

#endif
