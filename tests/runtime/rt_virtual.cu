// C++ on the device: objects of a class hierarchy with virtual methods and virtual destructors
// created by device `new` in one kernel, called virtually in another (a method that calls
// another virtual method through `this`), deleted in a third; function pointers from a table
// with an initializer and chosen in code; device malloc/free against the heap size set with
// cudaDeviceSetLimit. Last, a call through a pointer that is no function fails the launch.
#include "rt_check.h"

#include <vector>

__device__ int destroyed[3]; // destructor calls per class: Shape, Square, Circle

struct Shape {
    int id;
    __device__ explicit Shape(int i) : id(i) {}
    __device__ virtual ~Shape() { atomicAdd(&destroyed[0], 1); }
    __device__ virtual float area() const = 0;
    __device__ virtual float scaled(float s) const { return s * area(); } // virtual call inside
};

struct Square : Shape {
    float side;
    __device__ Square(int i, float x) : Shape(i), side(x) {}
    __device__ ~Square() override { atomicAdd(&destroyed[1], 1); }
    __device__ float area() const override { return side * side; }
};

struct Circle : Shape {
    float r;
    int *log; // a member allocated with new[] and released by the destructor
    __device__ Circle(int i, float x) : Shape(i), r(x), log(new int[4]) { log[0] = i; }
    __device__ ~Circle() override
    {
        delete[] log;
        atomicAdd(&destroyed[2], 1);
    }
    __device__ float area() const override { return 3.0f * r * r; }
    __device__ float scaled(float s) const override { return s + area() + (float)log[0]; }
};

__global__ void make(Shape **objs, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    if (i % 3 == 0)
        objs[i] = new Circle(i, (float)(i % 7));
    else
        objs[i] = new Square(i, (float)(i % 5));
}

__global__ void use(Shape *const *objs, float *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = objs[i] ? objs[i]->scaled(2.0f) + (float)objs[i]->id : -1.0f;
}

__global__ void destroy(Shape **objs, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    delete objs[i];
    objs[i] = nullptr;
}

typedef int (*binop)(int, int);
__device__ int add_op(int a, int b) { return a + b; }
__device__ int mul_op(int a, int b) { return a * b; }
__device__ int sub_op(int a, int b) { return a - b; }
__device__ int max_op(int a, int b) { return a > b ? a : b; }
__device__ binop table[3] = {add_op, mul_op, sub_op};

__global__ void apply(const int *a, const int *b, int *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    binop f = i % 4 == 3 ? max_op : table[i % 4]; // from the table, or an address taken in code
    c[i] = f(a[i], b[i]);
}

// Each thread allocates `bytes`, fills the block, checks it, and reports whether it got one.
__global__ void alloc_probe(size_t bytes, int *got)
{
    unsigned char *p = (unsigned char *)malloc(bytes);
    got[threadIdx.x] = p != nullptr;
    if (!p)
        return;
    for (size_t k = 0; k < bytes; k += 4096)
        p[k] = (unsigned char)threadIdx.x;
    int ok = 1;
    for (size_t k = 0; k < bytes; k += 4096)
        ok &= p[k] == (unsigned char)threadIdx.x;
    got[threadIdx.x] += ok;
    free(p);
}

__global__ void call_bad(binop *slot, int *out)
{
    out[0] = (*slot)(1, 2);
}

static float expect_use(int i)
{
    float s = 2.0f;
    if (i % 3 == 0) {
        float r = (float)(i % 7);
        return s + 3.0f * r * r + (float)i + (float)i;
    }
    float x = (float)(i % 5);
    return s * (x * x) + (float)i;
}

int main()
{
    rt_seed();
    // The heap is set before the first kernel that allocates: 1 MiB.
    RT_CHECK(cudaDeviceSetLimit(cudaLimitMallocHeapSize, 1 << 20));
    size_t heap = 0;
    RT_CHECK(cudaDeviceGetLimit(&heap, cudaLimitMallocHeapSize));
    RT_EXPECT(heap >= (1 << 20), "heap limit %zu", heap);

    const int n = 300;
    Shape **objs = nullptr;
    float *out = nullptr;
    RT_CHECK(cudaMalloc(&objs, n * sizeof(Shape *)));
    RT_CHECK(cudaMalloc(&out, n * sizeof(float)));
    make<<<(n + 127) / 128, 128>>>(objs, n);
    RT_CHECK(cudaGetLastError());
    RT_CHECK(cudaDeviceSynchronize());
    use<<<(n + 63) / 64, 64>>>(objs, out, n);
    RT_CHECK(cudaDeviceSynchronize());
    std::vector<float> got(n);
    RT_CHECK(cudaMemcpy(got.data(), out, n * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++)
        RT_EXPECT(got[i] == expect_use(i), "object %d: got %g, want %g", i, got[i], expect_use(i));
    RT_OK("virtual calls on %d objects made by device new", n);
    destroy<<<(n + 127) / 128, 128>>>(objs, n);
    RT_CHECK(cudaDeviceSynchronize());
    int dead[3];
    RT_CHECK(cudaMemcpyFromSymbol(dead, destroyed, sizeof dead));
    int circles = (n + 2) / 3;
    RT_EXPECT(dead[0] == n && dead[1] == n - circles && dead[2] == circles,
              "destructors: %d %d %d", dead[0], dead[1], dead[2]);
    std::vector<Shape *> left(n);
    RT_CHECK(cudaMemcpy(left.data(), objs, n * sizeof(Shape *), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++)
        RT_EXPECT(left[i] == nullptr, "object %d not cleared", i);
    RT_OK("virtual destructors through delete (%d, %d, %d)", dead[0], dead[1], dead[2]);
    // Everything was freed: the whole heap is there again, and new objects fit as before.
    make<<<(n + 127) / 128, 128>>>(objs, n);
    RT_CHECK(cudaDeviceSynchronize());
    destroy<<<(n + 127) / 128, 128>>>(objs, n);
    RT_CHECK(cudaDeviceSynchronize());

    std::vector<int> a(n), b(n), c(n);
    for (int i = 0; i < n; i++) {
        a[i] = std::rand() % 1000 - 500;
        b[i] = std::rand() % 1000 - 500;
    }
    int *da, *db, *dc;
    RT_CHECK(cudaMalloc(&da, n * sizeof(int)));
    RT_CHECK(cudaMalloc(&db, n * sizeof(int)));
    RT_CHECK(cudaMalloc(&dc, n * sizeof(int)));
    RT_CHECK(cudaMemcpy(da, a.data(), n * sizeof(int), cudaMemcpyHostToDevice));
    RT_CHECK(cudaMemcpy(db, b.data(), n * sizeof(int), cudaMemcpyHostToDevice));
    apply<<<(n + 63) / 64, 64>>>(da, db, dc, n);
    RT_CHECK(cudaDeviceSynchronize());
    RT_CHECK(cudaMemcpy(c.data(), dc, n * sizeof(int), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++) {
        int want = i % 4 == 0 ? a[i] + b[i] : i % 4 == 1 ? a[i] * b[i] : i % 4 == 2 ? a[i] - b[i]
                 : (a[i] > b[i] ? a[i] : b[i]);
        RT_EXPECT(c[i] == want, "apply %d: got %d, want %d", i, c[i], want);
    }
    RT_OK("function pointers from an initialized table and from code");

    int *dgot, hgot[32];
    RT_CHECK(cudaMalloc(&dgot, sizeof hgot));
    alloc_probe<<<1, 32>>>(2 << 20, dgot); // larger than the heap: every malloc gives NULL
    RT_CHECK(cudaDeviceSynchronize());
    RT_CHECK(cudaMemcpy(hgot, dgot, sizeof hgot, cudaMemcpyDeviceToHost));
    for (int t = 0; t < 32; t++)
        RT_EXPECT(hgot[t] == 0, "thread %d got 2 MiB from a 1 MiB heap", t);
    alloc_probe<<<1, 8>>>(64 << 10, dgot); // 8 x 64 KiB fit
    RT_CHECK(cudaDeviceSynchronize());
    RT_CHECK(cudaMemcpy(hgot, dgot, 8 * sizeof(int), cudaMemcpyDeviceToHost));
    for (int t = 0; t < 8; t++)
        RT_EXPECT(hgot[t] == 2, "thread %d: malloc of 64 KiB gave %d", t, hgot[t]);
    RT_OK("device malloc/free within a 1 MiB heap");

    // A call through a pointer that holds no function fails the launch (sticky, as on a GPU).
    binop *slot;
    RT_CHECK(cudaMalloc(&slot, sizeof(binop)));
    unsigned long long garbage = 0x1234;
    RT_CHECK(cudaMemcpy(slot, &garbage, sizeof garbage, cudaMemcpyHostToDevice));
    call_bad<<<1, 1>>>(slot, dc);
    cudaError_t e = cudaDeviceSynchronize();
    RT_EXPECT(e == cudaErrorIllegalAddress || e == cudaErrorIllegalInstruction ||
                  e == cudaErrorInvalidPc || e == cudaErrorLaunchFailure,
              "call through garbage: %s (%d)", cudaGetErrorString(e), (int)e);
    RT_OK("a call through a pointer to no function fails the launch: %s", cudaGetErrorName(e));
    return 0;
}
