/*
 * tests/unit/rfc8463.h: the keys of RFC 8463 Appendix A, for its signed
 * example tests/data/rfc8463.eml, and a time after the example's t=.
 */
#ifndef CALGATE_TEST_RFC8463_H
#define CALGATE_TEST_RFC8463_H

#define RFC8463_ED "v=DKIM1; k=ed25519; " \
	"p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define RFC8463_RSA "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ" \
	"DkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCN" \
	"b3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZy" \
	"VYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
#define T_2018	1600000000	/* after t= of the example */

#endif
