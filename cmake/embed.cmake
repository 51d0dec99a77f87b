# Writes a C file that holds a text file as a NUL-terminated char array, so a program can carry
# a document without a second copy in the source tree. Every byte is a \x escape in a string
# literal: valid for any byte, where an initializer list would overflow a signed char.
#   cmake -DIN=FILE -DOUT=FILE.c -DNAME=SYMBOL -P cmake/embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "(..)" "\\\\x\\1" esc "${hex}")
# one string literal per line of the document
string(REPLACE "\\x0a" "\\x0a\"\n    \"" lines "${esc}")
file(WRITE "${OUT}.tmp"
     "/* Generated from ${IN} by cmake/embed.cmake: edit that file, not this one. */\n"
     "const char ${NAME}[] =\n    \"${lines}\";\n")
# Only replace when different, so an unchanged document does not rebuild the program.
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
