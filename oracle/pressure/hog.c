/* The pressure oracle's workload, built on the host with gcc -static (oracle/pressure.py).
 *
 *   hog grow MIB_PER_STEP USLEEP   anonymous memory grown MIB_PER_STEP at a time, each page
 *                                  written once (one page fault each), USLEEP microseconds
 *                                  between steps, until the OOM killer takes it.  One mapping,
 *                                  reserved up front (overcommit 1), so its page tables are the
 *                                  kernel's for one growing VMA.
 *   hog hold MIB                   MIB of anonymous memory written, then /held created and
 *                                  the process waits for a signal: memory kept in use while
 *                                  the zone is captured.
 *   hog frag FILE                  drop every other page of FILE's page cache
 *                                  (posix_fadvise DONTNEED, one page at a time): free memory
 *                                  left in single pages that cannot merge, a fragmented zone.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int grow(long step_mib, long pause_us)
{
    size_t reserve = (size_t)64 << 30;
    char *p = mmap(NULL, reserve, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        perror("hog: mmap");
        return 1;
    }
    size_t step = (size_t)step_mib << 20;
    for (size_t off = 0; off + step <= reserve; off += step) {
        for (size_t i = 0; i < step; i += 4096)
            p[off + i] = 1;
        if (pause_us)
            usleep(pause_us);
    }
    return 0;
}

static int hold(long mib)
{
    size_t size = (size_t)mib << 20;
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("hog: mmap");
        return 1;
    }
    for (size_t i = 0; i < size; i += 4096)
        p[i] = 1;
    close(open("/held", O_WRONLY | O_CREAT, 0644));
    for (;;)
        pause();
}

static int frag(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        perror(path);
        return 1;
    }
    long n = 0;
    for (off_t off = 0; off + 4096 <= st.st_size; off += 8192)
        if (posix_fadvise(fd, off, 4096, POSIX_FADV_DONTNEED) == 0)
            n++;
    printf("hog: dropped %ld pages of %s\n", n, path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "grow"))
        return grow(atol(argv[2]), atol(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "hold"))
        return hold(atol(argv[2]));
    if (argc == 3 && !strcmp(argv[1], "frag"))
        return frag(argv[2]);
    fprintf(stderr, "usage: hog grow MIB USLEEP | hog hold MIB | hog frag FILE\n");
    return 2;
}
