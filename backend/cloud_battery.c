/*
 * cloud_battery — the battery rule of the device-cloud sync (cloud_battery.h).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloud_battery.h"
#include "cloud_driver.h"
#include "fsutil.h"

#define SYS_POWER_SUPPLY "/sys/class/power_supply"

/* The first line of <dir>/<name>/<file> into buf ("" when unreadable). */
static void
read_attr(const char *dir, const char *name, const char *file, char *buf, size_t size)
{
	buf[0] = '\0';
	char *path = fsu_printf("%s/%s/%s", dir, name, file);
	if (!path)
		return;
	FILE *f = fopen(path, "re");
	free(path);
	if (!f)
		return;
	if (!fgets(buf, (int)size, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
}

void
cloud_battery_read(const char *dir, int *percent, bool *charging)
{
	*percent = -1;
	*charging = false;
	if (!dir || !*dir)
		dir = SYS_POWER_SUPPLY;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char type[64], value[64];
		read_attr(dir, de->d_name, "type", type, sizeof type);
		if (strcmp(type, "Battery") == 0) {
			read_attr(dir, de->d_name, "capacity", value, sizeof value);
			char *end;
			long cap = strtol(value, &end, 10);
			if (end == value || cap < 0 || cap > 100)
				continue;   /* no level: not a battery we can judge */
			if (*percent < 0 || cap < *percent)
				*percent = (int)cap;
			read_attr(dir, de->d_name, "status", value, sizeof value);
			if (strcmp(value, "Charging") == 0 || strcmp(value, "Full") == 0)
				*charging = true;
		} else if (strcmp(type, "Mains") == 0 || strcmp(type, "USB") == 0) {
			read_attr(dir, de->d_name, "online", value, sizeof value);
			if (strcmp(value, "1") == 0)
				*charging = true;
		}
	}
	closedir(d);
}

int
cloud_battery_verdict(int percent, bool charging, bool forced, ohb_cloud_error_type_t *why)
{
	*why = OHB_CLOUD_ERR_NO_ERROR;
	if (charging || percent < 0)
		return 0;
	if (percent < CLOUD_BATTERY_LOW) {
		*why = OHB_CLOUD_ERR_BATTERY_LEVEL_LOW;
		return CLOUD_E_BATTERY;
	}
	if (percent < CLOUD_BATTERY_WARNING && !forced) {
		*why = OHB_CLOUD_ERR_BATTERY_LEVEL_WARNING;
		return CLOUD_E_BATTERY;
	}
	return 0;
}
