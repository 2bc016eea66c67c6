/* tests/support/spare_redis.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spare_redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_env.h"

static bool accepts_connections(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&address, sizeof address) == 0;
    close(fd);
    return ok;
}

static void launch(spare_redis *r)
{
    char port[16], logfile[600];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(logfile, sizeof logfile, "%s/redis.log", r->dir);
    const char *argv[16 + SPARE_REDIS_MAX_ARGS] = {"redis-server", "--port", port, "--bind", "127.0.0.1",
                                                    "--dir", r->dir, "--logfile", logfile, "--daemonize", "no",
                                                    "--save", "", "--appendonly", "no"};
    int argc = 15;
    for (int i = 0; r->args[i] != NULL; i++)
        argv[argc++] = r->args[i];
    argv[argc] = NULL;
    if (accepts_connections(r->port))
        fail_msg("port %d is taken: a spare Redis from an earlier run?", r->port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Dies with the test, whatever ends it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    r->pid = pid;
    for (int i = 0; i < 1000; i++) {
        if (accepts_connections(r->port))
            return;
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            r->pid = 0;
            fail_msg("redis-server exited at start (%d); see %s", status, logfile);
        }
        usleep(10 * 1000);
    }
    fail_msg("redis-server did not listen on %d within 10 s", r->port);
}

void spare_redis_start(spare_redis *r, const char *const *args)
{
    memset(r, 0, sizeof *r);
    r->port = atoi(test_env_require("SHOAL_TEST_SPARE_REDIS_PORT"));
    snprintf(r->dir, sizeof r->dir, "%s", test_env_require("SHOAL_TEST_SPARE_REDIS_DIR"));
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
    int count = 0;
    for (; args != NULL && args[count] != NULL; count++) {
        assert_true(count < SPARE_REDIS_MAX_ARGS);
        r->args[count] = args[count];
    }
    r->args[count] = NULL;
    char command[1200];
    snprintf(command, sizeof command, "rm -rf '%s' && mkdir -p '%s'", r->dir, r->dir);
    assert_int_equal(system(command), 0);
    launch(r);
}

void spare_redis_stop(spare_redis *r)
{
    if (r->pid <= 0)
        return;
    /* A stopped (SIGSTOP) server must go on to hear the SIGTERM; one
     * running a script that never ends does not act on it (a failed test
     * can leave one): SIGKILL after 10 s. */
    kill(r->pid, SIGCONT);
    kill(r->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t done = waitpid(r->pid, &status, WNOHANG);
        if (done == r->pid || (done < 0 && errno != EINTR)) {
            r->pid = 0;
            return;
        }
        usleep(10 * 1000);
    }
    kill(r->pid, SIGKILL);
    while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR) {
    }
    r->pid = 0;
}

void spare_redis_restart(spare_redis *r)
{
    spare_redis_stop(r);
    launch(r);
}

void spare_redis_ping(const spare_redis *r, char *out, size_t size)
{
    out[0] = '\0';
    struct timeval timeout = {2, 0};
    redisContext *context = redisConnectWithTimeout("127.0.0.1", r->port, timeout);
    if (context == NULL || context->err != 0) {
        if (context != NULL)
            redisFree(context);
        return;
    }
    redisSetTimeout(context, timeout);
    redisReply *reply = redisCommand(context, "PING");
    if (reply != NULL && (reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_ERROR))
        snprintf(out, size, "%s", reply->str);
    freeReplyObject(reply);
    redisFree(context);
}
