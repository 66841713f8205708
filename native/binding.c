/*
 * Node-API glue. The JS side (src/backends/udp-forwarder.ts) validates and
 * parses; this file only converts plain values:
 *   open(opts) -> handle          opts: {tunName, port, localIP, localNet, localPrefix,
 *                                        gatewayIP, mtu, simple, queues, vnetHdr, udpGso,
 *                                        udpGro, icmpRate}  (IPv4 as host-order uint32)
 *   setPeers(handle, Uint32Array [net, prefixLen, publicIP]*,
 *            Uint32Array [addr word 0..3, prefixLen, publicIP]* (IPv6 subnets; optional))
 *   counters(handle) -> {name: number}
 *   info(handle) -> {tunName, ifIndex, port, features: {...}, log: [string]}
 *   close(handle)
 */
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forwarder.h"

struct handle {
  struct forwarder *fw;
  bool closed;
};

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      const napi_extended_error_info *info_;                               \
      napi_get_last_error_info((env), &info_);                             \
      napi_throw_error((env), NULL, info_ && info_->error_message ? info_->error_message : #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static void finalize(napi_env env, void *data, void *hint) {
  struct handle *h = data;
  if (h->fw) {
    fw_close(h->fw);
    fw_free(h->fw);
  }
  free(h);
}

static bool get_prop(napi_env env, napi_value obj, const char *name, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return false;
  if (napi_get_named_property(env, obj, name, out) != napi_ok) return false;
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  return t != napi_undefined && t != napi_null;
}

static double num_prop(napi_env env, napi_value obj, const char *name, double dflt) {
  napi_value v;
  double d;
  if (!get_prop(env, obj, name, &v) || napi_get_value_double(env, v, &d) != napi_ok) return dflt;
  return d;
}

static bool bool_prop(napi_env env, napi_value obj, const char *name, bool dflt) {
  napi_value v;
  bool b;
  if (!get_prop(env, obj, name, &v) || napi_get_value_bool(env, v, &b) != napi_ok) return dflt;
  return b;
}

static struct handle *get_handle(napi_env env, napi_value v) {
  struct handle *h = NULL;
  if (napi_get_value_external(env, v, (void **)&h) != napi_ok || !h) {
    napi_throw_type_error(env, NULL, "not a forwarder handle");
    return NULL;
  }
  if (h->closed) {
    napi_throw_error(env, "ERR_WEFT_CLOSED", "forwarder is closed");
    return NULL;
  }
  return h;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "open(options) needs an options object");
    return NULL;
  }
  napi_value o = argv[0];
  struct weft_options opt;
  memset(&opt, 0, sizeof opt);
  napi_value v;
  size_t len = 0;
  if (get_prop(env, o, "tunName", &v)) CHECK(env, napi_get_value_string_utf8(env, v, opt.tun_name, sizeof opt.tun_name, &len));
  if (!opt.tun_name[0]) strcpy(opt.tun_name, "weft0");
  opt.port = (uint16_t)num_prop(env, o, "port", 8285);
  opt.local_ip = (uint32_t)num_prop(env, o, "localIP", 0);
  opt.local_net = (uint32_t)num_prop(env, o, "localNet", 0);
  opt.local_prefix = (uint8_t)num_prop(env, o, "localPrefix", 32);
  opt.gateway_ip = (uint32_t)num_prop(env, o, "gatewayIP", 0);
  opt.mtu = (int)num_prop(env, o, "mtu", 0);
  opt.simple = bool_prop(env, o, "simple", false);
  opt.queues = (int)num_prop(env, o, "queues", 1);
  opt.allow_vnet_hdr = bool_prop(env, o, "vnetHdr", true);
  opt.allow_udp_gso = bool_prop(env, o, "udpGso", true);
  opt.allow_udp_gro = bool_prop(env, o, "udpGro", true);
  opt.icmp_rate = (int)num_prop(env, o, "icmpRate", 100);

  char err[256] = "";
  struct forwarder *fw = NULL;
  if (fw_open(&opt, &fw, err, sizeof err) < 0) {
    napi_throw_error(env, "ERR_WEFT_OPEN", err);
    return NULL;
  }
  struct handle *h = calloc(1, sizeof *h);
  if (!h) {
    fw_close(fw);
    fw_free(fw);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  h->fw = fw;
  napi_value ext;
  if (napi_create_external(env, h, finalize, NULL, &ext) != napi_ok) {
    finalize(env, h, NULL);
    napi_throw_error(env, NULL, "napi_create_external failed");
    return NULL;
  }
  return ext;
}

static napi_value js_set_peers(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct handle *h = argc >= 1 ? get_handle(env, argv[0]) : NULL;
  if (!h) return NULL;
  napi_typedarray_type type;
  size_t n = 0;
  void *data = NULL;
  bool is_ta = false;
  if (argc >= 2) napi_is_typedarray(env, argv[1], &is_ta);
  if (!is_ta) {
    napi_throw_type_error(env, NULL, "setPeers needs a Uint32Array of [net, prefixLen, publicIP] triples");
    return NULL;
  }
  CHECK(env, napi_get_typedarray_info(env, argv[1], &type, &n, &data, NULL, NULL));
  if (type != napi_uint32_array || n % 3 != 0) {
    napi_throw_type_error(env, NULL, "setPeers needs a Uint32Array of [net, prefixLen, publicIP] triples");
    return NULL;
  }
  size_t n6 = 0;
  void *data6 = NULL;
  napi_valuetype t3 = napi_undefined;
  if (argc >= 3) napi_typeof(env, argv[2], &t3);
  if (t3 != napi_undefined) {
    bool is_ta6 = false;
    napi_is_typedarray(env, argv[2], &is_ta6);
    if (is_ta6) CHECK(env, napi_get_typedarray_info(env, argv[2], &type, &n6, &data6, NULL, NULL));
    if (!is_ta6 || type != napi_uint32_array || n6 % 6 != 0) {
      napi_throw_type_error(env, NULL, "setPeers' IPv6 table must be a Uint32Array of [addr0, addr1, addr2, addr3, prefixLen, publicIP] sextuples");
      return NULL;
    }
  }
  struct forwarder *fw = h->fw;
  struct peer_table *t = peer_table_build(data, n / 3, fw->opt.local_net & fw->local_mask, fw->local_mask, data6, n6 / 6);
  if (!t) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  fw_set_peers(fw, t);
  return NULL;
}

static napi_value js_counters(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct handle *h = argc >= 1 ? get_handle(env, argv[0]) : NULL;
  if (!h) return NULL;
  uint64_t vals[C_COUNT];
  fw_counters(h->fw, vals);
  napi_value obj;
  CHECK(env, napi_create_object(env, &obj));
  for (int k = 0; k < C_COUNT; k++) {
    napi_value v;
    CHECK(env, napi_create_double(env, (double)vals[k], &v));
    CHECK(env, napi_set_named_property(env, obj, weft_counter_names[k], v));
  }
  return obj;
}

static napi_status set_bool(napi_env env, napi_value obj, const char *name, bool b) {
  napi_value v;
  napi_status s = napi_get_boolean(env, b, &v);
  return s == napi_ok ? napi_set_named_property(env, obj, name, v) : s;
}

static napi_status set_num(napi_env env, napi_value obj, const char *name, double d) {
  napi_value v;
  napi_status s = napi_create_double(env, d, &v);
  return s == napi_ok ? napi_set_named_property(env, obj, name, v) : s;
}

static napi_value js_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct handle *h = argc >= 1 ? get_handle(env, argv[0]) : NULL;
  if (!h) return NULL;
  struct forwarder *fw = h->fw;
  napi_value obj, feat, log, v;
  CHECK(env, napi_create_object(env, &obj));
  CHECK(env, napi_create_string_utf8(env, fw->tun_name, NAPI_AUTO_LENGTH, &v));
  CHECK(env, napi_set_named_property(env, obj, "tunName", v));
  CHECK(env, set_num(env, obj, "ifIndex", fw->ifindex));
  CHECK(env, set_num(env, obj, "port", fw->bound_port));
  CHECK(env, set_num(env, obj, "gatewayIP", fw->opt.gateway_ip));
  CHECK(env, napi_create_object(env, &feat));
  const struct weft_features *f = &fw->feat;
  CHECK(env, napi_create_string_utf8(env, fw->opt.simple ? "simple" : "fast", NAPI_AUTO_LENGTH, &v));
  CHECK(env, napi_set_named_property(env, feat, "mode", v));
  CHECK(env, set_bool(env, feat, "vnetHdr", f->vnet_hdr));
  CHECK(env, set_bool(env, feat, "tso", f->tso));
  CHECK(env, set_bool(env, feat, "csumOffload", f->csum_offload));
  CHECK(env, set_bool(env, feat, "udpGso", f->udp_gso && !atomic_load(&fw->gso_broken)));
  CHECK(env, set_bool(env, feat, "udpGro", f->udp_gro));
  CHECK(env, set_bool(env, feat, "tunGro", f->tun_gro));
  CHECK(env, set_bool(env, feat, "multiQueue", f->multi_queue));
  CHECK(env, set_bool(env, feat, "batching", f->batching));
  CHECK(env, set_bool(env, feat, "steering", f->steering));
  CHECK(env, set_num(env, feat, "queues", f->queues));
  CHECK(env, napi_set_named_property(env, obj, "features", feat));
  pthread_mutex_lock(&fw->log_lock);
  int nlog = fw->nlog;
  char lines[WEFT_LOG_LINES][WEFT_LOG_LEN];
  memcpy(lines, fw->log, sizeof lines);
  pthread_mutex_unlock(&fw->log_lock);
  CHECK(env, napi_create_array_with_length(env, (size_t)nlog, &log));
  for (int i = 0; i < nlog; i++) {
    CHECK(env, napi_create_string_utf8(env, lines[i], NAPI_AUTO_LENGTH, &v));
    CHECK(env, napi_set_element(env, log, (uint32_t)i, v));
  }
  CHECK(env, napi_set_named_property(env, obj, "log", log));
  return obj;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct handle *h = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&h) != napi_ok || !h) {
    napi_throw_type_error(env, NULL, "not a forwarder handle");
    return NULL;
  }
  if (!h->closed) {
    h->closed = true;
    fw_close(h->fw);
    fw_free(h->fw);
    h->fw = NULL;
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"setPeers", NULL, js_set_peers, NULL, NULL, NULL, napi_default, NULL},
      {"counters", NULL, js_counters, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, js_info, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
