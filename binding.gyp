{
  "targets": [
    {
      "target_name": "weft_udp",
      "sources": [
        "native/binding.c",
        "native/forwarder.c",
        "native/peers.c",
        "native/tun.c",
        "native/checksum.c",
        "native/icmp.c",
        "native/simple.c",
        "native/tx.c",
        "native/rx.c",
        "native/worker.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden", "-pthread"],
      "cflags_c": ["-std=gnu11"],
      "ldflags": ["-pthread"]
    }
  ]
}
