# The project's warning policy, in one place (STYLE.md "Tooling").
set(MT_WARNINGS
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
  -Wundef -Wwrite-strings -Wimplicit-fallthrough -Wpointer-arith -Wvla
  -Wswitch-enum
  # Unused parameters are the norm in callback signatures (evloop, handlers).
  -Wno-unused-parameter
  # -Wswitch-enum already demands every enumerator; a default label on top of
  # it is how we handle values a peer sent that are outside the enum.
)
add_compile_options(${MT_WARNINGS} -fno-common -fstack-protector-strong)
if(MT_WERROR)
  add_compile_options(-Werror)
endif()
if(MT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# Test subjects (probe programs, static clients) are programs under test,
# not our code: they must build with -static, which ASan cannot, and their
# behaviour must not depend on our sanitizer runtime.
function(mt_unsanitized target)
  get_target_property(opts ${target} COMPILE_OPTIONS)
  if(opts)
    list(FILTER opts EXCLUDE REGEX "^-fsanitize|^-fno-sanitize-recover")
    set_target_properties(${target} PROPERTIES COMPILE_OPTIONS "${opts}")
  endif()
  get_target_property(lopts ${target} LINK_OPTIONS)
  if(lopts)
    list(FILTER lopts EXCLUDE REGEX "^-fsanitize")
    set_target_properties(${target} PROPERTIES LINK_OPTIONS "${lopts}")
  endif()
endfunction()
