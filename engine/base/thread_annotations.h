// Clang thread-safety annotations (-Wthread-safety), as LevelDB and Abseil
// use them: the compiler checks that a member marked GUARDED_BY(mu) is read
// and written only with mu held, and that a function marked REQUIRES(mu) is
// called only with it held. Other compilers see nothing.
//
// Annotate carrel::Mutex (engine/base/mutex.h), not std::mutex: libstdc++'s
// mutex carries no annotations, so the analysis cannot see it taken.
#pragma once

#if defined(__clang__)
#define CARREL_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define CARREL_THREAD_ANNOTATION(x)
#endif

// A type that is a lock (Mutex).
#define CAPABILITY(x) CARREL_THREAD_ANNOTATION(capability(x))
// An RAII type that holds a lock for its lifetime (MutexLock).
#define SCOPED_CAPABILITY CARREL_THREAD_ANNOTATION(scoped_lockable)
// The member is read and written only with the lock held.
#define GUARDED_BY(x) CARREL_THREAD_ANNOTATION(guarded_by(x))
// What the pointer points to is read and written only with the lock held.
#define PT_GUARDED_BY(x) CARREL_THREAD_ANNOTATION(pt_guarded_by(x))
// The caller holds the lock(s) (LevelDB's "REQUIRES: mutex_ is held").
#define REQUIRES(...) CARREL_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// The caller does not hold the lock(s): the function takes them.
#define EXCLUDES(...) CARREL_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// The function takes / lets go of the lock(s) and returns holding / not holding them.
#define ACQUIRE(...) CARREL_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) CARREL_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) CARREL_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// Tells the analysis the lock is held here (checked at run time by the caller).
#define ASSERT_CAPABILITY(x) CARREL_THREAD_ANNOTATION(assert_capability(x))
// The function is outside the analysis; say why beside it.
#define NO_THREAD_SAFETY_ANALYSIS CARREL_THREAD_ANNOTATION(no_thread_safety_analysis)
