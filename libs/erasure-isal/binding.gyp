{
  "targets": [
    {
      "target_name": "tw_isal",
      "sources": ["src/native/tw-isal.c"],
      "libraries": ["-lisal"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
