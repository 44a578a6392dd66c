// carrel-serve's front door: HTTP/1.1 and WebSocket over Boost.Beast (server.cc).
//
// Kept free of Beast so that only server.cc pays for its headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "carrel/engine.h"

namespace carrel::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;                 // 0: any free port (printed at start)
  size_t connections_max = 10000;       // open sockets, HTTP and WebSocket together
  size_t header_bytes_max = 8 * 1024;   // request line and headers
  size_t body_bytes_max = 1024 * 1024;  // a POST body (the call's payload)
  int http_idle_ms = 30000;             // a keep-alive socket with no request is closed
  int ws_idle_ms = 60000;               // pinged at half, closed when silent for this long
  int ws_handshake_ms = 10000;
  size_t ws_turns_in_flight_max = 16;  // per socket; reading pauses beyond it
  int drain_ms = 10000;                // SIGTERM: in-flight turns get this long
};

// Serves the engine's registered classes until SIGTERM or SIGINT, then drains:
// stops accepting, answers in-flight requests, closes WebSockets with 1001.
// Calls on_listening with the bound port. Returns a process exit code.
int serve(Engine& engine, const ServeOptions& options,
          const std::function<void(uint16_t port)>& on_listening);

// The chat page served at / and /chat (page.cc).
extern const char kChatPage[];

}  // namespace carrel::serve
