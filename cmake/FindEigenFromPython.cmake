# Eigen: a system/config install if CMake finds one, else the headers of the
# PyPI wheel cmeel-eigen (a build requirement), which installs a CMake package
# under <site-packages>/cmeel.prefix. Nothing is downloaded here.
macro(psnmf_find_eigen)
  find_package(Eigen3 3.3 CONFIG QUIET)
  if(NOT Eigen3_FOUND)
    find_package(Python 3.9 COMPONENTS Interpreter)
    if(Python_EXECUTABLE)
      execute_process(
        COMMAND "${Python_EXECUTABLE}" -c
                "import os, sys; print(';'.join(os.path.join(p, 'cmeel.prefix') for p in sys.path if p))"
        OUTPUT_VARIABLE _psnmf_cmeel_prefixes OUTPUT_STRIP_TRAILING_WHITESPACE)
      list(APPEND CMAKE_PREFIX_PATH ${_psnmf_cmeel_prefixes})
    endif()
    find_package(Eigen3 3.3 CONFIG)
  endif()
  if(NOT Eigen3_FOUND)
    message(FATAL_ERROR
      "psnmf needs Eigen >= 3.3: `pip install cmeel-eigen`, or install Eigen and set Eigen3_DIR.")
  endif()
endmacro()
