/* SPDX-License-Identifier: MIT */
/*
 * TEST FIXTURE, not an NVML: a shared library that exports only nvmlInit_v2, so that loading
 * it through the binding fails on the first missing required symbol (test-nvml-load.c).
 */
#include "hw/nvml/nvml-abi.h"

nvmlReturn_t nvmlInit_v2(void)
{
        return NVML_SUCCESS;
}
