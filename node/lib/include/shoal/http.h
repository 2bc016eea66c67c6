/* node/lib/include/shoal/http.h: the HTTP server, on libmicrohttpd. This module is the only
 * place that includes microhttpd.h; everything else sees shoal_ctx. */
#ifndef SHOAL_HTTP_H
#define SHOAL_HTTP_H

#include <stddef.h>

#include <shoal/shoal.h>

typedef struct shoal_http shoal_http;

/* Freezes the app's setup and starts its two listeners: the public one
 * (--bind, --port) with a pool of worker threads, each running its own
 * epoll loop, for the app's routes; and the admin one (--admin-bind,
 * --admin-port) on a thread of its own with 64 connections at most, for
 * shoal_app_admin's routes. Returns NULL with the reason in error when setup
 * failed or a port cannot be bound. */
shoal_http *shoal_http_start(shoal_app *app, char *error, size_t error_size);

/* The ports actually bound (useful with --port 0 and --admin-port 0). */
int shoal_http_port(const shoal_http *http);
int shoal_http_admin_port(const shoal_http *http);

/* Stops accepting new connections on the public port; requests on open
 * connections go on. The admin port stays open until shoal_http_stop, so
 * that health checks see the drain to its end. */
void shoal_http_stop_accepting(shoal_http *http);

/* Closes every connection, joins the workers and frees the server. Call
 * after the in-flight requests finished or the grace period ran out. */
void shoal_http_stop(shoal_http *http);

#endif
