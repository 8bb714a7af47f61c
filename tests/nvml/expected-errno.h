/* SPDX-License-Identifier: MIT */
/*
 * expected-errno.h — the errno the binding must give for every nvmlReturn_t (docs/nvml.md,
 * "Error mapping"), written out for the tests independently of src/hw/nvml/nvml-errors.c.
 */
#pragma once

#include <errno.h>

static const struct {
        int code;
        int errnum;
        const char *name;
} expected_errno[] = {
        { 1, EBADF, "NVML_ERROR_UNINITIALIZED" },
        { 2, EINVAL, "NVML_ERROR_INVALID_ARGUMENT" },
        { 3, EOPNOTSUPP, "NVML_ERROR_NOT_SUPPORTED" },
        { 4, EPERM, "NVML_ERROR_NO_PERMISSION" },
        { 5, EALREADY, "NVML_ERROR_ALREADY_INITIALIZED" },
        { 6, ENOENT, "NVML_ERROR_NOT_FOUND" },
        { 7, ENOBUFS, "NVML_ERROR_INSUFFICIENT_SIZE" },
        { 8, EIO, "NVML_ERROR_INSUFFICIENT_POWER" },
        { 9, ENXIO, "NVML_ERROR_DRIVER_NOT_LOADED" },
        { 10, ETIMEDOUT, "NVML_ERROR_TIMEOUT" },
        { 11, EIO, "NVML_ERROR_IRQ_ISSUE" },
        { 12, ELIBACC, "NVML_ERROR_LIBRARY_NOT_FOUND" },
        { 13, ENOSYS, "NVML_ERROR_FUNCTION_NOT_FOUND" },
        { 14, EUCLEAN, "NVML_ERROR_CORRUPTED_INFOROM" },
        { 15, ENODEV, "NVML_ERROR_GPU_IS_LOST" },
        { 16, ENOTRECOVERABLE, "NVML_ERROR_RESET_REQUIRED" },
        { 17, EACCES, "NVML_ERROR_OPERATING_SYSTEM" },
        { 18, ELIBBAD, "NVML_ERROR_LIB_RM_VERSION_MISMATCH" },
        { 19, EBUSY, "NVML_ERROR_IN_USE" },
        { 20, ENOMEM, "NVML_ERROR_MEMORY" },
        { 21, ENODATA, "NVML_ERROR_NO_DATA" },
        { 22, EOPNOTSUPP, "NVML_ERROR_VGPU_ECC_NOT_SUPPORTED" },
        { 23, ENOSPC, "NVML_ERROR_INSUFFICIENT_RESOURCES" },
        { 24, EOPNOTSUPP, "NVML_ERROR_FREQ_NOT_SUPPORTED" },
        { 25, EPROTO, "NVML_ERROR_ARGUMENT_VERSION_MISMATCH" },
        { 26, ENOSYS, "NVML_ERROR_DEPRECATED" },
        { 27, EAGAIN, "NVML_ERROR_NOT_READY" },
        { 28, ENODEV, "NVML_ERROR_GPU_NOT_FOUND" },
        { 29, EBADFD, "NVML_ERROR_INVALID_STATE" },
        { 30, EOPNOTSUPP, "NVML_ERROR_RESET_TYPE_NOT_SUPPORTED" },
        { 999, EIO, "NVML_ERROR_UNKNOWN" },
};
