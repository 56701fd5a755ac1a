/* SPDX-License-Identifier: MIT */
/*
 * serve_page.c: the page of `logbook serve`, embedded in the binary.
 *
 * The page is edited as a plain file, tools/serve_page.html (HTML, CSS and
 * JavaScript in one file; it loads nothing from elsewhere), and assembled
 * into the read-only data of this object with .incbin, between two
 * symbols. The Makefile makes this object depend on the HTML file.
 */
#include <stddef.h>

extern const char lb__serve_page_start[];
extern const char lb__serve_page_end[];

__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        ".globl lb__serve_page_start\n"
        ".hidden lb__serve_page_start\n"
        "lb__serve_page_start:\n"
        ".incbin \"tools/serve_page.html\"\n"
        ".globl lb__serve_page_end\n"
        ".hidden lb__serve_page_end\n"
        "lb__serve_page_end:\n"
        ".byte 0\n"
        ".popsection\n");

const char *srv_page(size_t *len);

const char *srv_page(size_t *len)
{
	*len = (size_t)(lb__serve_page_end - lb__serve_page_start);
	return lb__serve_page_start;
}
