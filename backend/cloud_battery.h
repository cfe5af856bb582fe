/*
 * cloud_battery — may a sync run now? The battery rule of REFERENCE.md
 * "cloudSync": while charging (or on mains power) always; on battery, below
 * 10 % never, below 15 % only when the caller forces it.
 *
 * The power supply is read the way Linux shows it, from a folder shaped like
 * /sys/class/power_supply: one sub-folder per supply with a "type" file
 * ("Battery", "Mains", "USB", …); a battery has "capacity" (0..100) and
 * "status" ("Charging", "Discharging", "Full", "Not charging"); a mains or
 * USB supply has "online" (1 when plugged in). Tests point the engine at a
 * folder of their own to simulate any battery. Pure: no state, any thread.
 */
#ifndef OHB_CLOUD_BATTERY_H
#define OHB_CLOUD_BATTERY_H

#include <stdbool.h>

#include "ohbackup_cloud.h"

#define CLOUD_BATTERY_LOW 10       /* below: refused, even forced */
#define CLOUD_BATTERY_WARNING 15   /* below: refused unless forced */

/* Reads the supplies under dir (NULL = /sys/class/power_supply). *percent is
 * the lowest battery's capacity, -1 when there is no battery (or the folder
 * is missing: a desktop or a container); *charging is true when a battery is
 * charging or full, or a mains/USB supply is online. */
void cloud_battery_read(const char *dir, int *percent, bool *charging);

/* 0 when a run may start; else 22400003 with *why = BATTERY_LEVEL_LOW (< 10 %)
 * or BATTERY_LEVEL_WARNING (< 15 %, not forced). */
int cloud_battery_verdict(int percent, bool charging, bool forced, ohb_cloud_error_type_t *why);

#endif
