/* What weights and caps entitle each busy tenant to: shares by weight, a capped tenant held to
 * its cap and what it leaves shared by the others' weights (water-filling), as gpu-server's
 * scheduler divides a device. Shared by vgpu-smi's report and vgpu-bench share. */
#ifndef VG_SHARES_H
#define VG_SHARES_H

/* n tenants; busy[i]: it had work; weight[i] >= 1; cap_percent[i]: 0 for none. Writes out[i]
 * (0 for tenants that were not busy; the busy ones' sum to 1 unless caps leave some unused). */
void vg_entitled_shares(int n, const int *busy, const unsigned *weight, const unsigned *cap_percent, double *out);

#endif
