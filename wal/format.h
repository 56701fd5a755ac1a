/* SPDX-License-Identifier: MIT */
/*
 * format.h: on-disk constants, mirroring docs/FORMAT.md. These values are
 * frozen: changing one is a format change (bump LB__FORMAT_VERSION and the
 * spec in the same commit). In-memory enums live elsewhere.
 */
#ifndef LB_WAL_FORMAT_H
#define LB_WAL_FORMAT_H

#include <stdint.h>

/* FORMAT.md §2.1, §10: the database format version this library writes
 * and reads (_meta `format`); earlier versions are refused at open. */
#define LB__FORMAT_VERSION 5u

/* FORMAT.md §3: segment header, 24 bytes, little-endian integers. */
#define LB__SEG_MAGIC0 0x89u /* bytes 0..3: 0x89 'L' 'B' 'W' */
#define LB__SEG_MAGIC1 0x4Cu
#define LB__SEG_MAGIC2 0x42u
#define LB__SEG_MAGIC3 0x57u
#define LB__SEG_OFF_VERSION 4    /* u16: LB__SEG_VERSION */
#define LB__SEG_VERSION 1u       /* the segment layout's, same in format 2 */
#define LB__SEG_OFF_CODEC 6      /* u8 */
#define LB__SEG_OFF_FLAGS 7      /* u8, reserved, MUST be 0 */
#define LB__SEG_OFF_RAWLEN 8     /* u32 */
#define LB__SEG_OFF_COUNT 12     /* u32 */
#define LB__SEG_OFF_STOREDLEN 16 /* u32 */
#define LB__SEG_OFF_CRC 20       /* u32: CRC-32 of bytes 0..19 then payload */
#define LB__SEG_HDR_SIZE 24
_Static_assert(LB__SEG_OFF_CRC + 4 == LB__SEG_HDR_SIZE, "segment header size");

#define LB__CODEC_STORED 0u
#define LB__CODEC_ZLIB 1u

/* FORMAT.md §3: hard caps a reader enforces before allocating. */
#define LB__SEG_RAW_MAX (48u << 20)     /* raw msgpack bytes in one segment */
#define LB__SEG_COUNT_MAX (1u << 24)    /* records in one segment */
#define LB__HDR_SEGMENTS_MAX (1u << 22) /* segments in one batch */
#define LB__MP_DEPTH_MAX 64             /* nesting a value may have */
/* No decoder allocates more than this on the strength of a length or count
 * it read. (A batch header's seg_hashes copy is bounded by the input
 * instead: its bytes are present in the value being decoded.) */
#define LB__WAL_ALLOC_CAP (64u << 20)

/* FORMAT.md §4: change record ops (equal to the public LB_OP_*). */
#define LB__OP_PUT 1u
#define LB__OP_DELETE 2u
#define LB__OP_TABLE 3u
/* The smallest valid record: fixarray, op, 1-byte table, 1-byte key, one
 * nil image and one empty bin8 image (95 01 a1 xx c4 01 xx c0 c4 00). A
 * header whose count exceeds raw_len / 10 is refused without parsing. */
#define LB__REC_MIN_SIZE 10u

/* FORMAT.md §5: batch header array layout. */
#define LB__HDR_VERSION 1u
#define LB__HDR_ITEMS 14u
#define LB__HASH_TAG "LBH1" /* domain tag at the start of hashed fields */

/* FORMAT.md §6: schema encoding (version 2: the rules of fields and
 * key_field; version 1 was never released and is not read). */
#define LB__SCHEMA_VERSION 2u
#define LB__SCHEMA_ITEMS 5u        /* items of the schema array */
#define LB__SCHEMA_FIELD_ITEMS 10u /* items of a field array */
/* FORMAT.md §6: a pattern's {m,n} counts, and the size its repetitions
 * expand to (each {m,n} copies what it repeats; regcomp() builds that). */
#define LB__PATTERN_DUP_MAX 255u
#define LB__PATTERN_EXPANSION_MAX 4096u

#endif
