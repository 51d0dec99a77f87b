# els-console's Debian package, built by the same `cpack -G DEB` as els-agent: the console's
# files are the install component "console", everything else stays in the default component
# ("Unspecified"), which is the els-agent package as before. Included by
# packaging/CMakeLists.txt before include(CPack).
set(ELS_CONSOLE_PKG_DIR ${CMAKE_CURRENT_LIST_DIR})

install(FILES ${ELS_CONSOLE_PKG_DIR}/els-console.service DESTINATION ${ELS_SYSTEMD_UNIT_DIR}
        COMPONENT console)
# root:els-console 0640 (postinst sets the group, which does not exist when dpkg unpacks).
# An existing file is the administrator's: `cmake --install` leaves it alone (dpkg has
# conffiles for the same job); the example is always in the doc dir.
install(CODE "
  if(EXISTS \"\$ENV{DESTDIR}/etc/els-console/els-console.conf\")
    message(STATUS \"Keeping: \$ENV{DESTDIR}/etc/els-console/els-console.conf (exists)\")
  else()
    file(INSTALL DESTINATION /etc/els-console TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
         FILES \"${ELS_CONSOLE_PKG_DIR}/els-console.conf\")
  endif()" COMPONENT console)
install(DIRECTORY DESTINATION /etc/els-console
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
        COMPONENT console)
install(FILES ${ELS_CONSOLE_PKG_DIR}/els-console.conf
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/els-console/examples COMPONENT console)
file(GLOB ELS_CONSOLE_DOCS ${CMAKE_SOURCE_DIR}/docs/console*.md)
install(FILES ${ELS_CONSOLE_DOCS} DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/els-console
        COMPONENT console)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL Unspecified console)
set(CPACK_DEBIAN_UNSPECIFIED_PACKAGE_NAME els-agent)
set(CPACK_DEBIAN_UNSPECIFIED_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_CONSOLE_PACKAGE_NAME els-console)
set(CPACK_DEBIAN_CONSOLE_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_CONSOLE_PACKAGE_SECTION admin)
set(CPACK_COMPONENT_CONSOLE_DESCRIPTION "ELS management console: agents dial in over mutual TLS")
set(CPACK_DEBIAN_CONSOLE_DESCRIPTION "ELS management console: agents dial in over mutual TLS
 els-console is the fleet's management console for elsd agents: agents open mutually
 authenticated TLS 1.3 connections to it and take their policy from it; operators use its
 HTTPS JSON API and pages with client certificates (admin or auditor). Its state (agents,
 groups, the PPS registry, policy versions with two-person approval, staged deployments,
 drift and the audit trail) is in PostgreSQL, which several instances may share.")
# Debian 12 package names for the libraries els-console links (t_package checks them).
set(CPACK_DEBIAN_CONSOLE_PACKAGE_DEPENDS
    "libc6 (>= 2.36), libconfig9 (>= 1.5), libssl3 (>= 3.0), libjansson4 (>= 2.14), libpq5, \
libevent-2.1-7 (>= 2.1.12), libevent-core-2.1-7 (>= 2.1.12), \
libevent-openssl-2.1-7 (>= 2.1.12), libsqlite3-0 (>= 3.40), libxxhash0 (>= 0.8), passwd, \
libjs-chart.js")
set(CPACK_DEBIAN_CONSOLE_PACKAGE_RECOMMENDS "postgresql-client")
set(CPACK_DEBIAN_CONSOLE_PACKAGE_CONTROL_EXTRA
    ${ELS_CONSOLE_PKG_DIR}/debian/postinst ${ELS_CONSOLE_PKG_DIR}/debian/prerm
    ${ELS_CONSOLE_PKG_DIR}/debian/postrm ${ELS_CONSOLE_PKG_DIR}/debian/conffiles)
