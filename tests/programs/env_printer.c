/* env_printer: prints its environment, one variable a line, in the order the
 * kernel handed it over (built with gcc -static: no dynamic loader, no libc
 * hooks; the environment must already be right at execve). */
#include <stdio.h>

extern char **environ;

int main(void)
{
	for (char **e = environ; *e; e++)
		puts(*e);
	return 0;
}
