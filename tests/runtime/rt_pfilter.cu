// A particle filter tracking a disk through a noisy synthetic video, in the way of a classic GPU
// benchmark's particle filter (issue 10: such a program computed 1e39 on the emulated GPU where a
// GPU gives ~50). Every stage runs on the device and is checked against a CPU reference that does
// the same arithmetic on the device's own inputs, so the first stage that differs is reported by
// name (frame, element, both values), and an error cannot hide behind the resampling's noise.
//
// The computations are those of that benchmark: a 32-bit linear congruential generator whose
// products overflow (int wrap-around, `%` of a negative number, fabs of the quotient by M),
// Box-Muller normals (log, sqrt, cos), truncating/rounding helpers ((int) of a double, compare
// with .5f), a likelihood over a disk of pixels (abs of an int index, pow(x, 2), exp), weights
// summed by a shared-memory tree reduction per block and a second kernel, normalisation, the CDF,
// and resampling by linear and binary search. The whole pipeline runs in double and in float.
#include <climits>
#include <cmath>
#include <vector>
#include "rt_check.h"

namespace {

const int kSizeX = 128, kSizeY = 128, kFrames = 10, kParticles = 1000;
const int kBlock = 512; // the benchmark's threads per block: 1000 particles make a partial block
const int kRadius = 5;

// The LCG of GCC's rand with the benchmark's int arithmetic: the product wraps modulo 2^32
// (written with unsigned so that it is defined in C++; nvcc emits the same mad.lo.s32), the
// remainder by INT_MAX keeps the dividend's sign, and the quotient is made positive by fabs.
template <typename T> __host__ __device__ T lcg_uniform(int *seed, int i)
{
    const int modulus = INT_MAX;
    int num = (int)(1103515245u * (unsigned)seed[i] + 12345u);
    seed[i] = num % modulus;
    return fabs(seed[i] / (T)modulus);
}

template <typename T> __host__ __device__ T lcg_normal(int *seed, int i)
{
    const T two_pi = (T)(2 * 3.14159265358979323846);
    T u = lcg_uniform<T>(seed, i);
    T v = lcg_uniform<T>(seed, i);
    T cosine = cos(two_pi * v);
    T rt = (T)-2 * log(u);
    return sqrt(rt) * cosine;
}

// The benchmark's rounding helper: truncates toward zero (its "round up" branch returns the
// value before incrementing it), comparing the fraction with a float constant.
template <typename T> __host__ __device__ T round_helper(T value)
{
    int truncated = (int)value;
    if (value - truncated < .5f)
        return truncated;
    return truncated;
}

// float overflows exp() at the benchmark's likelihoods (about +-328): the float pipeline scales
// them down ten times so that its weights stay finite and comparable.
template <typename T> __host__ __device__ T likelihood_divisor();
template <> __host__ __device__ double likelihood_divisor<double>() { return 50.0; }
template <> __host__ __device__ float likelihood_divisor<float>() { return 500.0f; }

struct Geometry {
    int ones;     // pixels in the disk
    int max_size; // pixels in the video
    int frame;    // current frame
};

template <typename T> __host__ __device__ int pixel_index(T x, T y, const int *disk, int j, Geometry g)
{
    int ix = (int)round_helper(x) + disk[j * 2 + 1];
    int iy = (int)round_helper(y) + disk[j * 2];
    int index = abs(ix * kSizeY * kFrames + iy * kFrames + g.frame);
    return index >= g.max_size ? 0 : index;
}

template <typename T>
__host__ __device__ T likelihood_of(const unsigned char *video, const int *ind, int ones)
{
    T sum = 0;
    for (int j = 0; j < ones; j++) {
        int pixel = video[ind[j]];
        sum += (pow((T)(pixel - 100), 2) - pow((T)(pixel - 228), 2)) / likelihood_divisor<T>();
    }
    return sum / ones;
}

// ---- device stages ----

template <typename T>
__global__ void k_motion(int n, int *seed, const T *xj, const T *yj, T *ax, T *ay)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        ax[i] = xj[i] + (T)1 + (T)5 * lcg_normal<T>(seed, i);
        ay[i] = yj[i] - (T)2 + (T)2 * lcg_normal<T>(seed, i);
    }
}

// Likelihood and weight of each particle, then the block's weights summed by a tree reduction in
// shared memory (threads past n contribute 0).
template <typename T>
__global__ void k_likelihood(int n, const T *ax, const T *ay, const int *disk, Geometry g,
                             const unsigned char *video, int *ind, T *lik, T *w, T *partial)
{
    __shared__ T buffer[kBlock];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    buffer[threadIdx.x] = 0;
    if (i < n) {
        for (int j = 0; j < g.ones; j++)
            ind[i * g.ones + j] = pixel_index(ax[i], ay[i], disk, j, g);
        lik[i] = likelihood_of<T>(video, ind + i * g.ones, g.ones);
        w[i] = (T)1 / (T)n * exp(lik[i]);
        buffer[threadIdx.x] = w[i];
    }
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            buffer[threadIdx.x] += buffer[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        partial[blockIdx.x] = buffer[0];
}

template <typename T> __global__ void k_sum(T *partial, int blocks)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        T sum = 0;
        for (int b = 0; b < blocks; b++)
            sum += partial[b];
        partial[0] = sum;
    }
}

template <typename T> __global__ void k_normalize(int n, T *w, const T *partial)
{
    __shared__ T total;
    if (threadIdx.x == 0)
        total = partial[0];
    __syncthreads();
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        w[i] = w[i] / total;
}

// One thread: the CDF, and the first point of the systematic resampling.
template <typename T> __global__ void k_cdf(int n, const T *w, T *cdf, int *seed, T *u1)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        cdf[0] = w[0];
        for (int x = 1; x < n; x++)
            cdf[x] = w[x] + cdf[x - 1];
        u1[0] = (T)1 / (T)n * lcg_uniform<T>(seed, 0);
    }
}

template <typename T> __host__ __device__ int find_linear(const T *cdf, int n, T value)
{
    for (int x = 0; x < n; x++)
        if (cdf[x] >= value)
            return x;
    return n - 1;
}

// The benchmark's binary search: the first index whose CDF is >= value, -1 when none.
template <typename T> __host__ __device__ int find_binary(const T *cdf, int begin, int end, T value)
{
    if (end < begin)
        return -1;
    while (end > begin) {
        int middle = begin + (end - begin) / 2;
        if (cdf[middle] >= value) {
            if (middle == 0 || cdf[middle - 1] < value)
                return middle;
            if (cdf[middle - 1] == value) {
                while (middle >= 0 && cdf[middle] == value)
                    middle--;
                return middle + 1;
            }
        }
        if (cdf[middle] > value)
            end = middle - 1;
        else
            begin = middle + 1;
    }
    return -1;
}

template <typename T>
__global__ void k_resample(int n, const T *cdf, const T *u1, T *u, const T *ax, const T *ay, T *xj,
                           T *yj, int *idx_linear, int *idx_binary)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        u[i] = u1[0] + i / (T)n;
        int index = find_linear(cdf, n, u[i]);
        idx_linear[i] = index;
        idx_binary[i] = find_binary(cdf, 0, n - 1, u[i]);
        xj[i] = ax[index];
        yj[i] = ay[index];
    }
}

// ---- host side ----

const char *g_type = "";

template <typename T> bool same_real(T got, T want, double rel)
{
    if (std::isnan((double)got) || std::isnan((double)want))
        return std::isnan((double)got) && std::isnan((double)want);
    if (std::isinf((double)got) || std::isinf((double)want))
        return got == want;
    double scale = std::fmax(std::fabs((double)got), std::fabs((double)want));
    return std::fabs((double)got - (double)want) <= rel * scale + 1e-300;
}

// Reports the first element where the device departs from the CPU and stops the program.
template <typename T>
void expect_reals(const char *stage, int frame, const std::vector<T> &got, const std::vector<T> &want,
                  double rel)
{
    for (size_t i = 0; i < want.size(); i++)
        RT_EXPECT(same_real(got[i], want[i], rel),
                  "%s: first difference at stage %s, frame %d, element %zu: device %.17g, CPU %.17g",
                  g_type, stage, frame, i, (double)got[i], (double)want[i]);
}

void expect_ints(const char *stage, int frame, const std::vector<int> &got, const std::vector<int> &want)
{
    for (size_t i = 0; i < want.size(); i++)
        RT_EXPECT(got[i] == want[i],
                  "%s: first difference at stage %s, frame %d, element %zu: device %d, CPU %d", g_type,
                  stage, frame, i, got[i], want[i]);
}

template <typename T> void download(std::vector<T> &host, const T *dev)
{
    RT_CHECK(cudaMemcpy(host.data(), dev, host.size() * sizeof(T), cudaMemcpyDeviceToHost));
}

template <typename T> void upload(T *dev, const std::vector<T> &host)
{
    RT_CHECK(cudaMemcpy(dev, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
}

// The disk's offsets (y, x pairs) and the video: a disk of radius kRadius at 228 moving by (+1,
// -2) per frame over a background of 100, plus Gaussian noise from the host's LCG.
std::vector<int> make_disk()
{
    std::vector<int> disk;
    for (int x = 0; x < 2 * kRadius - 1; x++)
        for (int y = 0; y < 2 * kRadius - 1; y++)
            if (std::hypot(x - kRadius + 1.0, y - kRadius + 1.0) < kRadius) {
                disk.push_back(y - kRadius + 1);
                disk.push_back(x - kRadius + 1);
            }
    return disk;
}

std::vector<unsigned char> make_video(int *noise_seed)
{
    std::vector<unsigned char> video((size_t)kSizeX * kSizeY * kFrames);
    for (int x = 0; x < kSizeX; x++)
        for (int y = 0; y < kSizeY; y++)
            for (int k = 0; k < kFrames; k++) {
                int cx = kSizeX / 2 + k, cy = kSizeY / 2 - 2 * k;
                int value = std::hypot(x - cx, y - cy) < kRadius ? 228 : 100;
                value += (int)(5 * lcg_normal<double>(noise_seed, 0));
                video[(size_t)x * kSizeY * kFrames + y * kFrames + k] =
                    (unsigned char)(value < 0 ? 0 : value > 255 ? 255 : value);
            }
    return video;
}

template <typename T> void run_filter(const char *type)
{
    g_type = type;
    const int n = kParticles, blocks = (n + kBlock - 1) / kBlock;
    std::vector<int> disk = make_disk();
    const int ones = (int)disk.size() / 2;
    int noise_seed = 1;
    std::vector<unsigned char> video = make_video(&noise_seed);

    // The benchmark seeds particle i with time(0) * i, wrapping; a fixed "time" keeps the run
    // reproducible and still sends negative seeds through the LCG.
    std::vector<int> seed(n);
    for (int i = 0; i < n; i++)
        seed[i] = (int)(1700000000u * (unsigned)i);
    const T start_x = (T)round_helper((T)(kSizeY / 2.0)), start_y = (T)round_helper((T)(kSizeX / 2.0));
    std::vector<T> xj(n, start_x), yj(n, start_y);

    int *d_seed, *d_disk, *d_ind, *d_idx_lin, *d_idx_bin;
    unsigned char *d_video;
    T *d_xj, *d_yj, *d_ax, *d_ay, *d_lik, *d_w, *d_partial, *d_cdf, *d_u1, *d_u;
    RT_CHECK(cudaMalloc(&d_seed, n * sizeof(int)));
    RT_CHECK(cudaMalloc(&d_disk, disk.size() * sizeof(int)));
    RT_CHECK(cudaMalloc(&d_ind, (size_t)n * ones * sizeof(int)));
    RT_CHECK(cudaMalloc(&d_idx_lin, n * sizeof(int)));
    RT_CHECK(cudaMalloc(&d_idx_bin, n * sizeof(int)));
    RT_CHECK(cudaMalloc(&d_video, video.size()));
    for (T **p : {&d_xj, &d_yj, &d_ax, &d_ay, &d_lik, &d_w, &d_partial, &d_cdf, &d_u})
        RT_CHECK(cudaMalloc(p, n * sizeof(T)));
    RT_CHECK(cudaMalloc(&d_u1, sizeof(T)));
    upload(d_seed, seed);
    upload(d_disk, disk);
    upload(d_video, video);
    upload(d_xj, xj);
    upload(d_yj, yj);

    // Tolerances for what libm and libdevice may round differently (log, cos, exp, sqrt);
    // integer stages and searches must match exactly.
    const double rel = sizeof(T) == 8 ? 1e-12 : 1e-5;
    std::vector<T> ax(n), ay(n), lik(n), w(n), partial(n), cdf(n), u(n), u1(1), want(n), want_y(n);
    std::vector<int> seed_dev(n), ind((size_t)n * ones), want_ind((size_t)n * ones), idx_lin(n),
        idx_bin(n), want_idx(n);
    for (int k = 1; k < kFrames; k++) {
        // Motion: LCG, Box-Muller.
        k_motion<T><<<blocks, kBlock>>>(n, d_seed, d_xj, d_yj, d_ax, d_ay);
        RT_CHECK(cudaGetLastError());
        download(seed_dev, d_seed);
        download(ax, d_ax);
        download(ay, d_ay);
        for (int i = 0; i < n; i++) {
            want[i] = xj[i] + (T)1 + (T)5 * lcg_normal<T>(seed.data(), i);
            want_y[i] = yj[i] - (T)2 + (T)2 * lcg_normal<T>(seed.data(), i);
        }
        expect_ints("LCG seeds (motion)", k, seed_dev, seed);
        expect_reals("Box-Muller x", k, ax, want, rel);
        expect_reals("Box-Muller y", k, ay, want_y, rel);

        // Likelihood over the disk, weights, per-block sums.
        Geometry g = {ones, (int)video.size(), k};
        k_likelihood<T><<<blocks, kBlock>>>(n, d_ax, d_ay, d_disk, g, d_video, d_ind, d_lik, d_w, d_partial);
        RT_CHECK(cudaGetLastError());
        download(ind, d_ind);
        download(lik, d_lik);
        download(w, d_w);
        download(partial, d_partial);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < ones; j++)
                want_ind[(size_t)i * ones + j] = pixel_index(ax[i], ay[i], disk.data(), j, g);
        expect_ints("pixel indices (round helper, abs)", k, ind, want_ind);
        for (int i = 0; i < n; i++)
            want[i] = likelihood_of<T>(video.data(), ind.data() + (size_t)i * ones, ones);
        expect_reals("likelihood (pow)", k, lik, want, rel);
        for (int i = 0; i < n; i++)
            want[i] = (T)1 / (T)n * std::exp(lik[i]);
        expect_reals("weights (exp)", k, w, want, rel);
        for (int b = 0; b < blocks; b++) {
            T sum = 0;
            for (int i = b * kBlock; i < n && i < (b + 1) * kBlock; i++)
                sum += w[i];
            RT_EXPECT(same_real(partial[b], sum, rel),
                      "%s: first difference at stage block reduction, frame %d, block %d: device "
                      "%.17g, CPU %.17g", type, k, b, (double)partial[b], (double)sum);
        }

        // Sum of the partial sums, normalisation.
        k_sum<T><<<blocks, kBlock>>>(d_partial, blocks);
        k_normalize<T><<<blocks, kBlock>>>(n, d_w, d_partial);
        RT_CHECK(cudaGetLastError());
        T total = 0;
        for (int b = 0; b < blocks; b++)
            total += partial[b];
        std::vector<T> w_norm(n);
        download(w_norm, d_w);
        for (int i = 0; i < n; i++)
            want[i] = w[i] / total;
        expect_reals("normalised weights", k, w_norm, want, rel);

        // CDF, first resampling point, searches.
        k_cdf<T><<<1, 1>>>(n, d_w, d_cdf, d_seed, d_u1);
        k_resample<T><<<blocks, kBlock>>>(n, d_cdf, d_u1, d_u, d_ax, d_ay, d_xj, d_yj, d_idx_lin, d_idx_bin);
        RT_CHECK(cudaGetLastError());
        download(cdf, d_cdf);
        download(u1, d_u1);
        download(u, d_u);
        download(idx_lin, d_idx_lin);
        download(idx_bin, d_idx_bin);
        download(xj, d_xj);
        download(yj, d_yj);
        download(seed_dev, d_seed);
        want[0] = w_norm[0];
        for (int x = 1; x < n; x++)
            want[x] = w_norm[x] + want[x - 1];
        expect_reals("CDF", k, cdf, want, rel);
        T want_u1 = (T)1 / (T)n * lcg_uniform<T>(seed.data(), 0);
        expect_ints("LCG seeds (resampling)", k, seed_dev, seed);
        RT_EXPECT(u1[0] == want_u1, "%s: first difference at stage u1, frame %d: device %.17g, CPU %.17g",
                  type, k, (double)u1[0], (double)want_u1);
        for (int i = 0; i < n; i++)
            want[i] = u1[0] + i / (T)n;
        expect_reals("u", k, u, want, 0);
        for (int i = 0; i < n; i++)
            want_idx[i] = find_linear(cdf.data(), n, u[i]);
        expect_ints("linear search", k, idx_lin, want_idx);
        for (int i = 0; i < n; i++)
            want_idx[i] = find_binary(cdf.data(), 0, n - 1, u[i]);
        expect_ints("binary search", k, idx_bin, want_idx);
        for (int i = 0; i < n; i++) {
            RT_EXPECT(xj[i] == ax[idx_lin[i]] && yj[i] == ay[idx_lin[i]],
                      "%s: first difference at stage resampled particles, frame %d, element %d", type, k, i);
        }

        // The estimate (the benchmark prints it every frame): where the disk is, within a few
        // pixels; the 1e39 of issue 10 was this number.
        double xe = 0, ye = 0;
        for (int i = 0; i < n; i++) {
            xe += (double)ax[i] * w_norm[i];
            ye += (double)ay[i] * w_norm[i];
        }
        double dist = std::hypot(xe - (kSizeX / 2 + k), ye - (kSizeY / 2 - 2 * k));
        std::printf("%s frame %d: estimate (%.3f, %.3f), %.3f from the disk\n", type, k, xe, ye, dist);
        RT_EXPECT(std::isfinite(dist) && dist < 10, "%s: frame %d: estimate (%g, %g) is not near the disk",
                  type, k, xe, ye);
    }
    RT_OK("%s particle filter: %d frames of %d particles, every stage matches the CPU", type,
          kFrames - 1, n);

    for (void *p : {(void *)d_seed, (void *)d_disk, (void *)d_ind, (void *)d_idx_lin, (void *)d_idx_bin,
                    (void *)d_video, (void *)d_xj, (void *)d_yj, (void *)d_ax, (void *)d_ay, (void *)d_lik,
                    (void *)d_w, (void *)d_partial, (void *)d_cdf, (void *)d_u1, (void *)d_u})
        RT_CHECK(cudaFree(p));
}

} // namespace

int main()
{
    run_filter<double>("double");
    run_filter<float>("float");
    std::printf("PASS\n");
    return 0;
}
