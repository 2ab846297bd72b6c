# Lambda deployment packages: a zip with the function's executable named `bootstrap` at its root,
# mode 0755, as the provided.al2023 runtime expects.
#
#   sluice_lambda_package(<executable target> [NAME <name>])
#
# After <target> links, ${CMAKE_BINARY_DIR}/functions/<name>/bootstrap (the unpacked code folder)
# and ${CMAKE_BINARY_DIR}/functions/<name>.zip are written; <name> defaults to the target's name.
# Building the target (with `make build` or `--target <target>`) builds its package.
#
#   sluice_lambda_package_bootstrap(<name> <bootstrap file>)
#
# The same for a ready-made `bootstrap` (a script): a target <name>-package, built by default.

function(_sluice_lambda_package_commands out_var bootstrap_source stage zip)
  # `cmake -E tar --format=zip` (libarchive) keeps the file's Unix mode in the zip's external
  # attributes, so `bootstrap` stays executable once unzipped.
  set(${out_var}
    COMMAND ${CMAKE_COMMAND} -E rm -rf ${stage} ${zip}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${stage}
    COMMAND ${CMAKE_COMMAND} -E copy ${bootstrap_source} ${stage}/bootstrap
    COMMAND chmod 0755 ${stage}/bootstrap
    COMMAND ${CMAKE_COMMAND} -E chdir ${stage} ${CMAKE_COMMAND} -E tar cf ${zip} --format=zip
      bootstrap
    PARENT_SCOPE)
endfunction()

function(sluice_lambda_package target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "NAME" "")
  if(NOT ARG_NAME)
    set(ARG_NAME ${target})
  endif()
  set(stage ${CMAKE_BINARY_DIR}/functions/${ARG_NAME})
  set(zip ${CMAKE_BINARY_DIR}/functions/${ARG_NAME}.zip)
  _sluice_lambda_package_commands(commands $<TARGET_FILE:${target}> ${stage} ${zip})
  add_custom_command(TARGET ${target} POST_BUILD ${commands}
    COMMENT "Packaging ${target} as ${zip}" VERBATIM)
  set_property(TARGET ${target} APPEND PROPERTY ADDITIONAL_CLEAN_FILES ${stage} ${zip})
endfunction()

function(sluice_lambda_package_bootstrap name bootstrap)
  get_filename_component(bootstrap ${bootstrap} ABSOLUTE)
  set(stage ${CMAKE_BINARY_DIR}/functions/${name})
  set(zip ${CMAKE_BINARY_DIR}/functions/${name}.zip)
  _sluice_lambda_package_commands(commands ${bootstrap} ${stage} ${zip})
  add_custom_command(OUTPUT ${zip} ${commands} DEPENDS ${bootstrap}
    COMMENT "Packaging ${bootstrap} as ${zip}" VERBATIM)
  add_custom_target(${name}-package ALL DEPENDS ${zip})
endfunction()
