/* The CR component starts the main thread here with sp at the top of its
 * stack in the stack area and r0 holding the badge of the thread's own cap. */
	.section .text.start, "ax"
	.global _start
	.arm
_start:
	mov	fp, #0
	bl	_main
1:	mov	r7, #5		/* SYS_THREAD_EXIT */
	svc	#0
	b	1b

/* Entry of threads created by the runtime: r0 carries the thread record. */
	.global _thread_entry
_thread_entry:
	mov	fp, #0
	bl	_thread_main
2:	mov	r7, #5
	svc	#0
	b	2b

	.section .note.GNU-stack,"",%progbits
