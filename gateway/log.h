/*
 * Leveled logging to stderr. Any thread may call; each line is written with
 * one write(2) so lines from different threads do not interleave.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

enum gw_log_level { GW_LOG_ERROR = 0, GW_LOG_WARN = 1, GW_LOG_INFO = 2, GW_LOG_DEBUG = 3 };

void gw_log_set_level(enum gw_log_level lvl);
enum gw_log_level gw_log_get_level(void);
void gw_log(enum gw_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define gw_log_err(...)   gw_log(GW_LOG_ERROR, __VA_ARGS__)
#define gw_log_warn(...)  gw_log(GW_LOG_WARN, __VA_ARGS__)
#define gw_log_info(...)  gw_log(GW_LOG_INFO, __VA_ARGS__)
#define gw_log_debug(...) gw_log(GW_LOG_DEBUG, __VA_ARGS__)

#endif
