// examples/classes/rate_limiter.h — a per-user token bucket.
//
// One object per user holds "tokens|last_refill_ms" in KV. Tokens refill
// continuously at kRefillPerSecond up to kBucketCapacity, computed from
// ctx.now_ms() when a request arrives, so an idle limiter costs nothing: no
// timer, no alarm, and the object may hibernate between requests. Because the
// object's turns never interleave, two concurrent requests can never spend the
// same token.
//
// Methods:
//   take    count (default 1) -> "ok|remaining" or "limited|retry_after_ms"
//   peek    -> tokens available now, rounded down
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "classes/common.h"

namespace carrel::examples {

inline constexpr char kRateLimiterClass[] = "RateLimiter";
inline constexpr double kBucketCapacity = 10.0;
inline constexpr double kRefillPerSecond = 5.0;

class RateLimiter final : public Handler {
 public:
  Result<std::string> on_request(Context& ctx, const Request& request) override {
    if (request.method != "take" && request.method != "peek") return unknown_method(ctx, request);
    CARREL_ASSIGN_OR_RETURN(double tokens, refilled(ctx));
    if (request.method == "peek") return std::to_string(static_cast<int64_t>(std::floor(tokens)));
    double want = request.payload.empty() ? 1.0 : std::stod(request.payload);
    if (want <= 0 || want > kBucketCapacity) {
      return Status::invalid_argument("take " + request.payload + ": count must be in 1.." +
                                      std::to_string(static_cast<int>(kBucketCapacity)));
    }
    if (tokens < want) {
      // Nothing is written: a refused request leaves the bucket as it was.
      auto wait_ms = static_cast<int64_t>(std::ceil((want - tokens) * 1000.0 / kRefillPerSecond));
      return "limited|" + std::to_string(wait_ms);
    }
    tokens -= want;
    CARREL_RETURN_IF_ERROR(ctx.kv().put("bucket", encode(tokens, ctx.now_ms())));
    return "ok|" + std::to_string(static_cast<int64_t>(std::floor(tokens)));
  }

 private:
  static std::string encode(double tokens, UnixMs at_ms) {
    return std::to_string(tokens) + "|" + std::to_string(at_ms);
  }

  // Tokens available at ctx.now_ms(): a new bucket starts full.
  static Result<double> refilled(Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(auto stored, ctx.kv().get("bucket"));
    if (!stored) return kBucketCapacity;
    auto f = split_fields(*stored);
    if (f.size() != 2) {
      return Status::corruption("rate limiter " + ctx.object().label() + ": bad bucket '" +
                                *stored + "'");
    }
    double tokens = std::stod(f[0]);
    // A clock that steps back never takes tokens away.
    int64_t elapsed_ms = std::max<int64_t>(0, ctx.now_ms() - std::stoll(f[1]));
    return std::min(kBucketCapacity,
                    tokens + static_cast<double>(elapsed_ms) * kRefillPerSecond / 1000.0);
  }
};

inline Status register_rate_limiter(Engine& engine) {
  return engine.register_class(kRateLimiterClass,
                               [](const ObjectRef&) { return std::make_unique<RateLimiter>(); });
}

}  // namespace carrel::examples
