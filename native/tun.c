/*
 * TUN device plumbing: open a queue, turn on offloads, and the few device
 * facts the forwarder sets itself. Addresses and routes are the caller's.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "forwarder.h"

int tun_open_queue(const char *name, bool vnet, bool multi_queue, char *actual, char *err, size_t errlen) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    snprintf(err, errlen, "open /dev/net/tun: %s", strerror(errno));
    return -1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (vnet) ifr.ifr_flags |= IFF_VNET_HDR;
  if (multi_queue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    snprintf(err, errlen, "TUNSETIFF %s: %s", name, strerror(errno));
    close(fd);
    return -1;
  }
  if (vnet) {
    int sz = WEFT_VNET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
      snprintf(err, errlen, "TUNSETVNETHDRSZ: %s", strerror(errno));
      close(fd);
      return -1;
    }
  }
  /* a stale persistent device of the same name (left by `ip tuntap add` or a
   * crash) would otherwise outlive close(); weft owns this name */
  (void)ioctl(fd, TUNSETPERSIST, 0);
  if (actual) {
    memcpy(actual, ifr.ifr_name, IFNAMSIZ);
    actual[IFNAMSIZ - 1] = 0;
  }
  return fd;
}

/* Reads may then return TCP super-packets (TSO) and packets whose checksum is
 * left to us (NEEDS_CSUM). Returns 0 or -errno. */
int tun_enable_offload(int fd) {
  unsigned off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN;
  if (ioctl(fd, TUNSETOFFLOAD, off) < 0) return -errno;
  return 0;
}

static int ifreq_ioctl(const char *name, unsigned long req, struct ifreq *ifr) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
  int rc = ioctl(s, req, ifr) < 0 ? -errno : 0;
  close(s);
  return rc;
}

int tun_set_mtu(const char *name, int mtu) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_mtu = mtu;
  return ifreq_ioctl(name, SIOCSIFMTU, &ifr);
}

int tun_ifindex(const char *name) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  int rc = ifreq_ioctl(name, SIOCGIFINDEX, &ifr);
  return rc < 0 ? rc : ifr.ifr_ifindex;
}

/* The ICMP unreachables the forwarder writes into the TUN come from the local
 * gateway address, which is local to this host; the kernel drops such packets
 * as martians unless accept_local is on for the device. Best effort: /proc/sys
 * shows the sysctls of the calling thread's network namespace. */
void tun_allow_local_source(const char *name) {
  char path[96];
  snprintf(path, sizeof path, "/proc/sys/net/ipv4/conf/%s/accept_local", name);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t r = write(fd, "1", 1);
  (void)r;
  close(fd);
}
