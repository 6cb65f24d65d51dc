#include "shares.h"

void vg_entitled_shares(int n, const int *busy, const unsigned *weight, const unsigned *cap_percent, double *out)
{
    double left = 1.0;
    for (int i = 0; i < n; i++)
        out[i] = -1; /* not fixed yet */
    for (int round = 0; round <= n; round++) {
        double weights = 0;
        for (int i = 0; i < n; i++)
            if (busy[i] && out[i] < 0)
                weights += weight[i];
        int fixed_one = 0;
        for (int i = 0; i < n && !fixed_one; i++) {
            if (!busy[i] || out[i] >= 0 || !cap_percent[i] || !weights)
                continue;
            double share = left * weight[i] / weights;
            if (share > cap_percent[i] / 100.0) {
                out[i] = cap_percent[i] / 100.0; /* held to its cap: the rest is the others' */
                left -= out[i];
                fixed_one = 1;
            }
        }
        if (fixed_one)
            continue;
        for (int i = 0; i < n; i++)
            if (out[i] < 0)
                out[i] = busy[i] && weights ? left * weight[i] / weights : 0;
        return;
    }
}
