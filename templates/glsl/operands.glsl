// The operands of a family's kernel as buffer references: the output (KilnOutRef) and inputs
// 0..KILN_NUM_INPUTS-1 (KilnIn<k>Ref), one element each, from the emitter's KILN_TOUT/KILN_SOUT and
// KILN_T<k>/KILN_S<k>. Inlined by the emitters before the family's template.
layout(buffer_reference, std430, buffer_reference_align = KILN_SOUT) buffer KilnOutRef { KILN_TOUT v; };
#if KILN_NUM_INPUTS > 0
layout(buffer_reference, std430, buffer_reference_align = KILN_S0) readonly buffer KilnIn0Ref { KILN_T0 v; };
#endif
#if KILN_NUM_INPUTS > 1
layout(buffer_reference, std430, buffer_reference_align = KILN_S1) readonly buffer KilnIn1Ref { KILN_T1 v; };
#endif
#if KILN_NUM_INPUTS > 2
layout(buffer_reference, std430, buffer_reference_align = KILN_S2) readonly buffer KilnIn2Ref { KILN_T2 v; };
#endif
#if KILN_NUM_INPUTS > 3
layout(buffer_reference, std430, buffer_reference_align = KILN_S3) readonly buffer KilnIn3Ref { KILN_T3 v; };
#endif
