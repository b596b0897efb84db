/* ldm test guest: a freestanding multiboot program that proves liveness and
 * memory integrity across a migration.
 *
 * On the first serial port (COM1) it prints, in order:
 *   "LDM-TEST-GUEST START boot=<hex>"   once per boot (a second one means reset)
 *   "HB <n>"                            every hb= milliseconds, n = 1, 2, 3, ...
 *   "CORRUPT page=<i> ..."              if dirtied memory ever reads back wrong
 *
 * Kernel command line (all optional):
 *   hb=MS          heartbeat period, 10..1000 ms (default 50)
 *   dirty=SIZE     size of the region kept dirty, e.g. 64M (default 0)
 *   rate=PAGES     pages rewritten per second; 0 or "max" = as fast as possible
 *   pattern=TEXT   fill the dirty region's pages with TEXT (for capture tests)
 *   panic=MS       after MS milliseconds print "PANIC" and signal a panic to the
 *                  host through the pvpanic device (QEMU's run-state becomes
 *                  guest-panicked), for run-state checks
 *
 * The dirty region is swept page by page; each sweep is one generation. A
 * page always holds either the current or the previous generation, so every
 * page can be checked just before it is rewritten. Time comes from the PIT at
 * 100 Hz; the CPU halts between ticks unless it has dirtying to do. */

#include <stdint.h>

#define COM1 0x3F8
#define TICK_HZ 100u
#define PAGE_SIZE 4096u
#define REGION_BASE (8u << 20) /* well above the kernel image at 1 MiB */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* ---- serial ---------------------------------------------------------- */

static void serial_init(void)
{
    outb(COM1 + 1, 0x00); /* no UART interrupts: we poll */
    outb(COM1 + 3, 0x80); /* DLAB */
    outb(COM1 + 0, 0x01); /* 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); /* 8N1 */
    outb(COM1 + 2, 0xC7); /* FIFO on */
    outb(COM1 + 4, 0x03);
}

static void putc_serial(char c)
{
    while (!(inb(COM1 + 5) & 0x20)) {
    }
    outb(COM1, (uint8_t)c);
}

static void puts_serial(const char *s)
{
    while (*s) {
        if (*s == '\n')
            putc_serial('\r');
        putc_serial(*s++);
    }
}

static void put_dec(uint32_t v)
{
    char buf[11];
    int i = 10;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    puts_serial(&buf[i]);
}

static void put_hex(uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[9];
    for (int i = 7; i >= 0; --i) {
        buf[i] = digits[v & 0xF];
        v >>= 4;
    }
    buf[8] = 0;
    puts_serial(buf);
}

/* ---- interrupts: PIC remapped to 32..47, PIT on IRQ0 --------------------- */

struct idt_entry {
    uint16_t offset_low, selector;
    uint8_t zero, type;
    uint16_t offset_high;
} __attribute__((packed));

static struct idt_entry idt[256];
static volatile uint32_t ticks;

extern void isr32(void), isr33(void), isr34(void), isr35(void), isr36(void), isr37(void), isr38(void),
    isr39(void), isr40(void), isr41(void), isr42(void), isr43(void), isr44(void), isr45(void), isr46(void),
    isr47(void), isr_other(void);

static void idt_set(int n, void (*handler)(void))
{
    uint32_t a = (uint32_t)handler;
    idt[n] = (struct idt_entry){(uint16_t)a, 0x08, 0, 0x8E, (uint16_t)(a >> 16)};
}

void interrupt_dispatch(uint32_t vector)
{
    if (vector == 32)
        ticks++;
    if (vector >= 40)
        outb(0xA0, 0x20);
    outb(0x20, 0x20);
}

static void interrupts_init(void)
{
    void (*irq[16])(void) = {isr32, isr33, isr34, isr35, isr36, isr37, isr38, isr39,
                             isr40, isr41, isr42, isr43, isr44, isr45, isr46, isr47};
    for (int i = 0; i < 256; ++i)
        idt_set(i, isr_other);
    for (int i = 0; i < 16; ++i)
        idt_set(32 + i, irq[i]);
    struct {
        uint16_t limit;
        uint32_t base;
    } __attribute__((packed)) idtr = {sizeof idt - 1, (uint32_t)idt};
    __asm__ volatile("lidt %0" ::"m"(idtr));

    /* Remap the PICs so IRQs do not collide with CPU exceptions; only IRQ0 on. */
    outb(0x20, 0x11);
    outb(0xA0, 0x11);
    outb(0x21, 32);
    outb(0xA1, 40);
    outb(0x21, 4);
    outb(0xA1, 2);
    outb(0x21, 1);
    outb(0xA1, 1);
    outb(0x21, 0xFE);
    outb(0xA1, 0xFF);

    uint32_t divisor = 1193182u / TICK_HZ;
    outb(0x43, 0x34); /* channel 0, lo/hi, rate generator */
    outb(0x40, (uint8_t)divisor);
    outb(0x40, (uint8_t)(divisor >> 8));
}

/* ---- command line ------------------------------------------------------ */

struct config {
    uint32_t hb_ms;
    uint32_t dirty_bytes;
    uint32_t rate; /* pages per second, 0 = unlimited */
    const char *pattern;
    uint32_t pattern_len;
    uint32_t panic_ms; /* 0 = never */
};

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

static uint32_t parse_size(const char *s)
{
    uint32_t v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (uint32_t)(*s++ - '0');
    switch (*s) {
    case 'k': case 'K': return v << 10;
    case 'm': case 'M': return v << 20;
    case 'g': case 'G': return v << 30;
    default: return v;
    }
}

static struct config parse_cmdline(const char *cmdline)
{
    struct config c = {50, 0, 0, 0, 0, 0};
    const char *p = cmdline;
    while (p && *p) {
        while (*p == ' ')
            p++;
        if (starts_with(p, "hb="))
            c.hb_ms = parse_size(p + 3);
        else if (starts_with(p, "dirty="))
            c.dirty_bytes = parse_size(p + 6);
        else if (starts_with(p, "rate="))
            c.rate = starts_with(p + 5, "max") ? 0 : parse_size(p + 5);
        else if (starts_with(p, "panic="))
            c.panic_ms = parse_size(p + 6);
        else if (starts_with(p, "pattern=")) {
            c.pattern = p + 8;
            while (p[8 + c.pattern_len] && p[8 + c.pattern_len] != ' ')
                c.pattern_len++;
        }
        while (*p && *p != ' ')
            p++;
    }
    if (c.hb_ms < 10)
        c.hb_ms = 10;
    if (c.hb_ms > 1000)
        c.hb_ms = 1000;
    return c;
}

/* ---- the dirty region -------------------------------------------------- */

struct region {
    volatile uint32_t *base;
    uint32_t pages;
    uint32_t cursor;     /* next page to rewrite */
    uint32_t generation; /* pages below cursor hold it, the rest hold generation-1 */
    uint32_t corrupt_reports;
};

static uint32_t page_seal(uint32_t generation, uint32_t page) { return generation ^ 0xA5A5A5A5u ^ (page * 2654435761u); }

static void page_write(struct region *r, uint32_t page, uint32_t generation)
{
    volatile uint32_t *w = r->base + page * (PAGE_SIZE / 4);
    w[0] = generation;
    w[PAGE_SIZE / 8] = page;
    w[PAGE_SIZE / 4 - 1] = page_seal(generation, page);
}

static void page_check(struct region *r, uint32_t page, uint32_t expected)
{
    volatile uint32_t *w = r->base + page * (PAGE_SIZE / 4);
    uint32_t got = w[0];
    if (got == expected && w[PAGE_SIZE / 8] == page && w[PAGE_SIZE / 4 - 1] == page_seal(expected, page))
        return;
    if (r->corrupt_reports++ < 8) {
        puts_serial("CORRUPT page=");
        put_dec(page);
        puts_serial(" expected=");
        put_hex(expected);
        puts_serial(" got=");
        put_hex(got);
        puts_serial("\n");
    }
}

static void region_fill_pattern(struct region *r, const char *pattern, uint32_t len)
{
    if (!len)
        return;
    for (uint32_t page = 0; page < r->pages; ++page) {
        volatile char *bytes = (volatile char *)(r->base + page * (PAGE_SIZE / 4));
        /* Leave the three check words alone: pattern fills the bytes between. */
        for (uint32_t i = 8; i + len < PAGE_SIZE / 2; i += len)
            for (uint32_t j = 0; j < len; ++j)
                bytes[i + j] = pattern[j];
    }
}

static void region_init(struct region *r, uint32_t bytes)
{
    r->base = (volatile uint32_t *)REGION_BASE;
    r->pages = bytes / PAGE_SIZE;
    r->cursor = 0;
    r->generation = 1;
    r->corrupt_reports = 0;
    for (uint32_t page = 0; page < r->pages; ++page)
        page_write(r, page, 0);
}

static void region_dirty_one(struct region *r)
{
    page_check(r, r->cursor, r->generation - 1);
    page_write(r, r->cursor, r->generation);
    if (++r->cursor == r->pages) {
        r->cursor = 0;
        r->generation++;
    }
}

/* ---- main -------------------------------------------------------------- */

struct multiboot_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
};

void guest_main(uint32_t magic, const struct multiboot_info *mbi)
{
    serial_init();
    const char *cmdline = (magic == 0x2BADB002 && (mbi->flags & 4)) ? (const char *)mbi->cmdline : "";
    struct config cfg = parse_cmdline(cmdline);

    puts_serial("LDM-TEST-GUEST START boot=");
    put_hex((uint32_t)rdtsc() ^ (uint32_t)(rdtsc() >> 7));
    puts_serial("\n");

    struct region region = {0};
    uint32_t mem_top = (mbi->flags & 1) ? (mbi->mem_upper << 10) + (1u << 20) : 0;
    if (cfg.dirty_bytes) {
        if (REGION_BASE + cfg.dirty_bytes > mem_top) {
            puts_serial("ERROR dirty region does not fit in guest memory\n");
            cfg.dirty_bytes = 0;
        } else {
            region_init(&region, cfg.dirty_bytes);
            region_fill_pattern(&region, cfg.pattern, cfg.pattern_len);
            puts_serial("DIRTY pages=");
            put_dec(region.pages);
            puts_serial("\n");
        }
    }

    interrupts_init();
    __asm__ volatile("sti");

    uint32_t hb_ticks = cfg.hb_ms * TICK_HZ / 1000;
    if (!hb_ticks)
        hb_ticks = 1;
    uint32_t heartbeat = 0, last_hb_tick = ticks;
    uint32_t pages_done = 0, rate_start_tick = ticks;
    uint32_t panic_tick = ticks + cfg.panic_ms * TICK_HZ / 1000;

    for (;;) {
        uint32_t now = ticks;
        if (cfg.panic_ms && (int32_t)(now - panic_tick) >= 0) {
            cfg.panic_ms = 0;
            puts_serial("PANIC\n");
            outb(0x505, 1); /* pvpanic: guest panicked */
        }
        if (now - last_hb_tick >= hb_ticks) {
            last_hb_tick = now;
            puts_serial("HB ");
            put_dec(++heartbeat);
            puts_serial("\n");
        }
        if (region.pages && cfg.rate == 0) {
            for (int i = 0; i < 64; ++i)
                region_dirty_one(&region);
            continue;
        }
        if (region.pages) {
            /* Pages owed since the last rate window started; 64-bit-free maths. */
            uint32_t elapsed = now - rate_start_tick;
            uint32_t owed = (cfg.rate / TICK_HZ) * elapsed + (cfg.rate % TICK_HZ) * elapsed / TICK_HZ;
            while (pages_done < owed && ticks == now) {
                region_dirty_one(&region);
                pages_done++;
            }
            if (elapsed >= TICK_HZ * 60) { /* restart the window before the maths overflows */
                rate_start_tick = now;
                pages_done = 0;
            }
            if (pages_done < owed)
                continue;
        }
        __asm__ volatile("hlt");
    }
}
