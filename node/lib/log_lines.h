/* node/lib/log_lines.h: a loop thread's access lines held until its turn
 * ends, for node/'s own files. The log's public side is <shoal/log.h>. */
#ifndef SHOAL_LOG_LINES_H
#define SHOAL_LOG_LINES_H

#include <stdbool.h>

/* On the calling thread: true holds its access lines (up to PIPE_BUF bytes)
 * for shoal_log_flush_lines, one write(2) for many; false writes what is
 * held and goes back to a write per line. Any other log line writes the
 * held ones first, so lines keep their order. */
void shoal_log_hold_lines(bool hold);
/* Writes the calling thread's held lines, if any. */
void shoal_log_flush_lines(void);

#endif
