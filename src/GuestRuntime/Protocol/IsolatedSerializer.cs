using MessagePack;
using MessagePack.Resolvers;

namespace IsolateGrains.Protocol;

/// <summary>
/// The MessagePack settings both sides use for values that cross the boundary: contractless (plain
/// classes and records need no attributes), private members included (captured closures and classes
/// with private state round-trip), and the untrusted-data guards on, because on the host the bytes
/// come from the guest, which is not trusted.
/// </summary>
internal static class IsolatedSerializer
{
    /// <summary>The options.</summary>
    public static MessagePackSerializerOptions Options { get; } = MessagePackSerializerOptions.Standard
        .WithResolver(ContractlessStandardResolverAllowPrivate.Instance)
        .WithSecurity(MessagePackSecurity.UntrustedData);
}
