/* One binary for tests/gpu/pack.sh: `nasdet_gpu bench ...` runs bench_gpu, anything else gpu_check. */
#include <string.h>

int gpu_check_main(int argc, char **argv);
int bench_gpu_main(int argc, char **argv);

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "bench") == 0) return bench_gpu_main(argc - 1, argv + 1);
    return gpu_check_main(argc, argv);
}
