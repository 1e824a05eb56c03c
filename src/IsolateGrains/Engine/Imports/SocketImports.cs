using IsolateGrains.Engine.FileSystem;
using Wasmtime;

namespace IsolateGrains.Engine.Imports;

/// <summary>
/// Sockets. A sandbox has no network: every socket call fails with <c>ENOSYS</c>, which .NET reports
/// as a <c>SocketException</c> (or <c>PlatformNotSupportedException</c>) inside the guest.
/// </summary>
internal static class SocketImports
{
    /// <summary>Defines the socket imports.</summary>
    public static void Define(Linker linker)
    {
        foreach (var name in new[] { "__syscall_socket", "__syscall_connect", "__syscall_sendto", "__syscall_recvfrom" })
        {
            linker.DefineFunction("env", name, (int a, int b, int c, int d, int e, int f) => -Errno.NoSystemCall);
        }
    }
}
