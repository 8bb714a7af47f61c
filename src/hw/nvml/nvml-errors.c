/* SPDX-License-Identifier: MIT */
/*
 * nvml-errors.c — nvmlReturn_t → errno, symbolic names and hints, and the error messages every
 * wrapper builds. Codes from nvml-abi.md §2 (HDR13); meanings of GPU_IS_LOST, OPERATING_SYSTEM,
 * RESET_REQUIRED and IN_USE from §2 [D]. The choice of errno per code is ours, documented in
 * docs/nvml.md ("Error mapping").
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hw/nvml/nvml-internal.h"
#include "util/alloc.h"
#include "util/enum-table.h"

struct nvml_code {
        nvmlReturn_t rc;
        const char *name;
        int errnum;
        const char *hint; /* what to do about it; NULL when the code says it all */
};

static const struct nvml_code codes[] = {
        { NVML_SUCCESS, "NVML_SUCCESS", 0, NULL },
        { NVML_ERROR_UNINITIALIZED, "NVML_ERROR_UNINITIALIZED", EBADF,
          "NVML was shut down under this handle; reopen the NVML binding" },
        { NVML_ERROR_INVALID_ARGUMENT, "NVML_ERROR_INVALID_ARGUMENT", EINVAL, NULL },
        { NVML_ERROR_NOT_SUPPORTED, "NVML_ERROR_NOT_SUPPORTED", EOPNOTSUPP,
          "this GPU, driver or mode does not offer the operation" },
        { NVML_ERROR_NO_PERMISSION, "NVML_ERROR_NO_PERMISSION", EPERM,
          "run the agent as root (MIG and vGPU management need privileges)" },
        { NVML_ERROR_ALREADY_INITIALIZED, "NVML_ERROR_ALREADY_INITIALIZED", EALREADY, NULL },
        { NVML_ERROR_NOT_FOUND, "NVML_ERROR_NOT_FOUND", ENOENT, NULL },
        { NVML_ERROR_INSUFFICIENT_SIZE, "NVML_ERROR_INSUFFICIENT_SIZE", ENOBUFS, NULL },
        { NVML_ERROR_INSUFFICIENT_POWER, "NVML_ERROR_INSUFFICIENT_POWER", EIO,
          "check that the GPU's power cables are attached" },
        { NVML_ERROR_DRIVER_NOT_LOADED, "NVML_ERROR_DRIVER_NOT_LOADED", ENXIO,
          "load the nvidia kernel module" },
        { NVML_ERROR_TIMEOUT, "NVML_ERROR_TIMEOUT", ETIMEDOUT, NULL },
        { NVML_ERROR_IRQ_ISSUE, "NVML_ERROR_IRQ_ISSUE", EIO,
          "the kernel reported an interrupt problem with the GPU; see the kernel log" },
        { NVML_ERROR_LIBRARY_NOT_FOUND, "NVML_ERROR_LIBRARY_NOT_FOUND", ELIBACC, NULL },
        { NVML_ERROR_FUNCTION_NOT_FOUND, "NVML_ERROR_FUNCTION_NOT_FOUND", ENOSYS,
          "the installed driver is too old for this call" },
        { NVML_ERROR_CORRUPTED_INFOROM, "NVML_ERROR_CORRUPTED_INFOROM", EUCLEAN,
          "the GPU's InfoROM is corrupted; contact the hardware vendor" },
        { NVML_ERROR_GPU_IS_LOST, "NVML_ERROR_GPU_IS_LOST", ENODEV,
          "the GPU fell off the bus; reset the GPU or reboot the host" },
        { NVML_ERROR_RESET_REQUIRED, "NVML_ERROR_RESET_REQUIRED", ENOTRECOVERABLE,
          "reset the GPU (or reboot the VM when it is passed through)" },
        { NVML_ERROR_OPERATING_SYSTEM, "NVML_ERROR_OPERATING_SYSTEM", EACCES,
          "the operating system blocked the call (e.g. cgroup device rules)" },
        { NVML_ERROR_LIB_RM_VERSION_MISMATCH, "NVML_ERROR_LIB_RM_VERSION_MISMATCH", ELIBBAD,
          "the NVML library and the nvidia kernel module come from different driver versions; "
          "reload the module or reboot" },
        { NVML_ERROR_IN_USE, "NVML_ERROR_IN_USE", EBUSY,
          "stop the processes or VMs using it and retry" },
        { NVML_ERROR_MEMORY, "NVML_ERROR_MEMORY", ENOMEM, NULL },
        { NVML_ERROR_NO_DATA, "NVML_ERROR_NO_DATA", ENODATA, NULL },
        { NVML_ERROR_VGPU_ECC_NOT_SUPPORTED, "NVML_ERROR_VGPU_ECC_NOT_SUPPORTED", EOPNOTSUPP,
          "disable ECC on the GPU to use this vGPU operation" },
        { NVML_ERROR_INSUFFICIENT_RESOURCES, "NVML_ERROR_INSUFFICIENT_RESOURCES", ENOSPC,
          "free capacity on the GPU (destroy instances) or pick another placement" },
        { NVML_ERROR_FREQ_NOT_SUPPORTED, "NVML_ERROR_FREQ_NOT_SUPPORTED", EOPNOTSUPP, NULL },
        { NVML_ERROR_ARGUMENT_VERSION_MISMATCH, "NVML_ERROR_ARGUMENT_VERSION_MISMATCH", EPROTO,
          "the driver does not know this struct version" },
        { NVML_ERROR_DEPRECATED, "NVML_ERROR_DEPRECATED", ENOSYS, NULL },
        { NVML_ERROR_NOT_READY, "NVML_ERROR_NOT_READY", EAGAIN, "retry later" },
        { NVML_ERROR_GPU_NOT_FOUND, "NVML_ERROR_GPU_NOT_FOUND", ENODEV, NULL },
        { NVML_ERROR_INVALID_STATE, "NVML_ERROR_INVALID_STATE", EBADFD,
          "the GPU is in a state where this is not allowed" },
        { NVML_ERROR_RESET_TYPE_NOT_SUPPORTED, "NVML_ERROR_RESET_TYPE_NOT_SUPPORTED", EOPNOTSUPP,
          NULL },
        { NVML_ERROR_UNKNOWN, "NVML_ERROR_UNKNOWN", EIO, NULL },
};

static const struct nvml_code *code_find(int rc)
{
        for (size_t i = 0; i < ELEMENTSOF(codes); i++)
                if ((int)codes[i].rc == rc)
                        return &codes[i];
        return NULL;
}

int gv_nvml_return_to_errno(int nvml_return)
{
        const struct nvml_code *c = code_find(nvml_return);
        return c ? c->errnum : EIO;
}

const char *gv_nvml_return_to_string(int nvml_return)
{
        const struct nvml_code *c = code_find(nvml_return);
        return c ? c->name : NULL;
}

/* reliability.md F8: the answers that say the GPU is gone or needs a reset [S74][S75], counted
 * per thread so that a caller can tell whether a sequence of its calls met one. */
static _Thread_local unsigned fatal_count;
static _Thread_local int fatal_last;

unsigned gv_nvml_fatal_count(int *ret_last_code)
{
        if (ret_last_code)
                *ret_last_code = fatal_last;
        return fatal_count;
}

int nvml_fail(const struct gv_nvml *n, nvmlReturn_t rc, struct gv_error **err, const char *call,
              const char *argfmt, ...)
{
        if (rc == NVML_ERROR_GPU_IS_LOST || rc == NVML_ERROR_RESET_REQUIRED) {
                fatal_count++;
                fatal_last = (int)rc;
        }
        const struct nvml_code *c = code_find((int)rc);
        int errnum = c ? c->errnum : EIO;
        char unknown[sizeof("NVML_ERROR_") + DECIMAL_STR_MAX(int)];
        const char *text = NULL;

        if (errnum == 0) /* SUCCESS handed here by mistake: still fail, never return 0 */
                errnum = EIO;
        if (!err)
                return -errnum;

        if (!c)
                (void)snprintf(unknown, sizeof(unknown), "NVML_ERROR_%d", (int)rc);
        if (n && n->sym.nvmlErrorString)
                text = n->sym.nvmlErrorString(rc);

        va_list ap;
        va_start(ap, argfmt);
        _cleanup_free_ char *args = xvasprintf(argfmt, ap);
        va_end(ap);

        return gv_error_set(err, errnum, "%s(%s): %s (%s)%s%s%s", call, args,
                            c ? c->name : unknown, text && *text ? text : "no description",
                            c && c->hint ? ": " : "", c && c->hint ? c->hint : "",
                            c && c->hint ? "." : "");
}

static const char *const cap_table[_GV_NVML_CAP_MAX] = {
        [GV_NVML_CAP_MEMORY_V2] = "memory-v2",
        [GV_NVML_CAP_TEMPERATURE] = "temperature",
        [GV_NVML_CAP_TEMPERATURE_V] = "temperature-v",
        [GV_NVML_CAP_MIG] = "mig",
        [GV_NVML_CAP_MIG_PROFILE_V] = "mig-profile-v",
        [GV_NVML_CAP_VGPU] = "vgpu",
        [GV_NVML_CAP_VGPU_PLACEMENTS] = "vgpu-placements",
        [GV_NVML_CAP_VGPU_HETEROGENEOUS] = "vgpu-heterogeneous",
};
DEFINE_STRING_TABLE_LOOKUP(gv_nvml_cap, enum gv_nvml_cap, cap_table);

int nvml_missing(const struct gv_nvml *n, const char *fn, struct gv_error **err)
{
        const char *since = NULL;

        for (size_t i = 0; i < gv_nvml_symbol_table_size; i++)
                if (strcmp(gv_nvml_symbol_table[i].names[0], fn) == 0)
                        since = gv_nvml_symbol_table[i].since;

        return gv_error_set(err, EOPNOTSUPP,
                            "NVML library '%s' does not export '%s'%s%s%s: the operation is not "
                            "available with this driver; install a newer NVIDIA driver to use it.",
                            n ? n->path : "?", fn, since ? " (added in " : "", since ? since : "",
                            since ? ")" : "");
}
