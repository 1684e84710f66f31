/*
 * relais plugin SDK — atomics helpers for state a plugin shares between
 * worker threads.  Thin wrappers over the GCC/Clang __atomic builtins so a
 * plugin needs no other header; all operations are sequentially consistent
 * unless the name says relaxed.
 */
#ifndef RELAIS_ATOMIC_H
#define RELAIS_ATOMIC_H

#include <stdint.h>

/** Adds v to *p and returns the new value. */
static inline uint64_t relais_atomic_add_u64(uint64_t *p, uint64_t v)
{
    return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}

/** Subtracts v from *p and returns the new value. */
static inline uint64_t relais_atomic_sub_u64(uint64_t *p, uint64_t v)
{
    return __atomic_sub_fetch(p, v, __ATOMIC_SEQ_CST);
}

/** Adds v to *p (relaxed: counters summed later) and returns the new value. */
static inline uint32_t relais_atomic_add_u32_relaxed(uint32_t *p, uint32_t v)
{
    return __atomic_add_fetch(p, v, __ATOMIC_RELAXED);
}

/** Reads *p. */
static inline uint64_t relais_atomic_load_u64(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

/** Stores v into *p. */
static inline void relais_atomic_store_u64(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

/** If *p == expected, stores desired and returns 1; else returns 0. */
static inline int relais_atomic_cas_u64(uint64_t *p, uint64_t expected,
                                        uint64_t desired)
{
    return __atomic_compare_exchange_n(p, &expected, desired, 0,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

#if defined(__x86_64__) || defined(__i386__)
#define RELAIS_CPU_RELAX() __builtin_ia32_pause()
#else
#define RELAIS_CPU_RELAX() ((void)0)
#endif

/** A minimal spin lock for very short critical sections. */
typedef struct relais_spinlock {
    int locked; /* 0 free, 1 held */
} relais_spinlock;

/** Takes the lock, spinning. */
static inline void relais_spin_lock(relais_spinlock *l)
{
    while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
            RELAIS_CPU_RELAX();
}

/** Releases the lock. */
static inline void relais_spin_unlock(relais_spinlock *l)
{
    __atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

#endif /* RELAIS_ATOMIC_H */
